package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// minRSABits is the smallest RSA modulus accepted, from a file or a JWKS.
const minRSABits = 2048

// loadPEM reads the public keys of a PEM file, by algorithm.
func loadPEM(path string) (map[string][]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys := make(map[string][]any)
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var pub any
		switch b.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				pub = c.PublicKey
			}
		default:
			return nil, fmt.Errorf("%s: block %d is %q, not a public key or certificate", path, n, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: block %d: %w", path, n, err)
		}
		alg, err := publicKeyAlg(pub)
		if err != nil {
			return nil, fmt.Errorf("%s: block %d: %w", path, n, err)
		}
		keys[alg] = append(keys[alg], pub)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	return keys, nil
}

// publicKeyAlg returns the algorithm a public key verifies, or why it is
// not accepted.
func publicKeyAlg(pub any) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits: at least %d needed", k.N.BitLen(), minRSABits)
		}
		return RS256, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("EC key on %s: only P-256 (ES256) is accepted", k.Curve.Params().Name)
		}
		return ES256, nil
	}
	return "", errors.New("not an RSA or EC public key")
}
