"""The browser edge: the inbox page the LMS embeds, served from the package's own files."""
