"""Admits a connection whose `token` query parameter is the one the tests know."""


def handler(event, context):
    token = (event.get("queryStringParameters") or {}).get("token")
    effect = "Allow" if token == "let-me-in" else "Deny"
    return {
        "principalId": "tester",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}
            ],
        },
        "context": {"user": "tester"},
    }
