"""Policy, Engine and the request and decision types: where rules meet facts."""
