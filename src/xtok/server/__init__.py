"""`xtok server`: a local AWS-compatible endpoint (STS, Secrets Manager, IAM) that enforces
what makes a token explode: SigV4, session expiry, policies, trust, MFA, revocation."""
