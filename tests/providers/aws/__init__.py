"""AWS tests: moto or LocalStack behind AWS_ENDPOINT_URL, real boto3."""
