"""IAM enforcement for the offline cloud: policy evaluation, request mapping, the moto hook."""
