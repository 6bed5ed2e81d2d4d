package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/t1route/t1route/nsx/nsxsim"
)

// principalFiles are where one principal identity's certificate and key went.
type principalFiles struct{ name, cert, key string }

// checkPrincipalFlags checks --principal-identity and --cert-dir before
// anything starts.
func checkPrincipalFlags(f flags) error {
	switch {
	case len(f.principals) > 0 && f.certDir == "":
		return errors.New("--principal-identity needs --cert-dir DIR: the directory to write NAME.crt and NAME.key into")
	case len(f.principals) == 0 && f.certDir != "":
		return errors.New("--cert-dir is only used with --principal-identity NAME: give at least one")
	}
	seen := map[string]bool{}
	for _, name := range f.principals {
		if seen[name] {
			return fmt.Errorf("--principal-identity %s is given twice", name)
		}
		seen[name] = true
	}
	return nil
}

// writePrincipalCerts writes NAME.crt and NAME.key (readable by the owner
// only) for every principal identity, signed by the simulator's CA.
func writePrincipalCerts(sim *nsxsim.Simulator, names []string, dir string) ([]principalFiles, error) {
	if len(names) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--cert-dir: %w", err)
	}
	var out []principalFiles
	for _, name := range names {
		certPEM, keyPEM, err := sim.AddPrincipalIdentity(name)
		if err != nil {
			return nil, fmt.Errorf("--principal-identity %s: %w", name, err)
		}
		pf := principalFiles{name: name, cert: filepath.Join(dir, name+".crt"), key: filepath.Join(dir, name+".key")}
		if err := os.WriteFile(pf.cert, certPEM, 0o644); err != nil {
			return nil, fmt.Errorf("--cert-dir: %w", err)
		}
		if err := os.WriteFile(pf.key, keyPEM, 0o600); err != nil {
			return nil, fmt.Errorf("--cert-dir: %w", err)
		}
		if err := os.Chmod(pf.key, 0o600); err != nil { // an older file kept its mode
			return nil, fmt.Errorf("--cert-dir: %w", err)
		}
		out = append(out, pf)
	}
	return out, nil
}
