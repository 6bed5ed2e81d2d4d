package main

// CA roots for NSX's TLS when none is pinned and the system has none (the image has no /etc/ssl).
import _ "golang.org/x/crypto/x509roots/fallback"
