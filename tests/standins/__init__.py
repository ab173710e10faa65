"""Local stand-ins of outside services, real servers on 127.0.0.1 that the tests script."""
