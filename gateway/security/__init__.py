"""Organisation authentication: SMART Backend Services (client_credentials + private_key_jwt),
the organisation registry, the gateway's access tokens, and the check of every FHIR request.

Nothing here logs or echoes an assertion, a token or a key: errors name the rule that failed.
"""
