"""The DynamoDB probe: shared aiobotocore clients, table checks, AWS error reading."""
