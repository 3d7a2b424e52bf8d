"""Partner FHIR servers: the outbound HTTP client (client.py, the only module that imports
aiohttp) for Subscription rest-hook notifications and plain FHIR calls, with its stable error
codes (errors.py). Never imports the gateway; never logs a body or a header value."""
