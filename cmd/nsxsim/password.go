package main

import (
	"crypto/rand"
	"encoding/base64"
)

func randomPassword() string {
	b := make([]byte, 18)
	rand.Read(b) //nolint:errcheck // never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}
