-- Accounts and databases for docker/docker-compose.yml. The postgres image runs this once, when
-- its data volume is first initialised; later edits need a fresh volume (or run them by hand).
-- The passwords are demo values: change them here and in the compose file / Synapse settings.

-- Synapse. It refuses to start on a database whose collation and character type are not C,
-- which only template0 can provide.
CREATE ROLE synapse LOGIN PASSWORD 'synapse';
CREATE DATABASE synapse
    OWNER synapse
    ENCODING 'UTF8'
    LC_COLLATE = 'C'
    LC_CTYPE = 'C'
    TEMPLATE template0;

-- The bridge. Owning its database lets it create its tables (PostgreSQL 15 and later no longer
-- let every role create in the public schema).
CREATE ROLE bridge LOGIN PASSWORD 'bridge';
CREATE DATABASE bridge OWNER bridge;
