"""The API Gateway stand-in of the offline cloud: WebSocket and REST APIs in front of functions."""
