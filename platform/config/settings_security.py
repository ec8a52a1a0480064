"""HTTPS settings: what a deployment behind TLS (DJANGO_HTTPS=1) turns on.

TLS ends at a proxy (nginx, or one in front of it) that sets X-Forwarded-Proto; Django trusts
that header for `request.is_secure()`, so the proxy must overwrite what clients send. Over plain
HTTP (a laptop, a closed network) none of it applies: browsers would drop Secure cookies and
nobody could log in.
"""

from config import env

if env.HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.HSTS_SECONDS
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
