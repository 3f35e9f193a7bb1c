"""Bootstrap: the bucket, packaging, rendering and deployment of the plldb helper stack."""
