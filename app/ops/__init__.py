"""Operating the service: health endpoints, ``flask doctor``, the ``flask`` commands."""
