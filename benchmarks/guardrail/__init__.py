"""The guardrail policy benchmark: inputs, the 20-rule policy in each language, harnesses."""
