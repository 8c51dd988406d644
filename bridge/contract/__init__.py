"""The LMS contract: the typed shapes of what the LMS sends and receives — request bodies,
answers and event payloads — from which validation, serialisation and the OpenAPI document come."""
