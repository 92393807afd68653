"""Token adapter: HMAC-signed JWTs through PyJWT."""

from parley.adapters.outbound.jwt.issuer import PyJwtTokenIssuer

__all__ = ["PyJwtTokenIssuer"]
