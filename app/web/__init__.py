"""Request handling every surface shares: who the caller is (credentials, access tokens),
body limits, untrusted JSON, errors in the shape of the surface a path belongs to."""
