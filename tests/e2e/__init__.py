"""End-to-end tests: a private Postfix, a real dnsmasq and the milter as a process."""
