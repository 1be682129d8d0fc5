package system_test

import (
	"strings"
	"testing"
)

const testHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAKFYABX7iVfN5nuqduYLC6HQMV3z8SD8cATOIlUm5fv"

func TestInvalidSFTPSettings(t *testing.T) {
	for spec, want := range map[string]string{
		"spec: {sftp: {address: files, username: u, password: p, hostKey: \"" + testHostKey + "\"}}\n":                           `spec.sftp.address: "files" is not host:port`,
		"spec: {sftp: {address: \"h:22\", username: u, hostKey: \"" + testHostKey + "\"}}\n":                                     `spec.sftp: give password or privateKey`,
		"spec: {sftp: {address: \"h:22\", username: u, password: p, hostKey: \"ssh-rsa nonsense\"}}\n":                           `spec.sftp.hostKey: not a public key in authorized_keys form`,
		"spec: {sftp: {address: \"h:22\", username: u, privateKey: \"-----BEGIN nothing\", hostKey: \"" + testHostKey + "\"}}\n": `spec.sftp.privateKey: not an unencrypted PEM private key`,
		"spec: {files: {dir: /tmp}, sftp: {address: \"h:22\", username: u, password: p, hostKey: \"" + testHostKey + "\"}}\n":    `give files (a local directory) or sftp, not both`,
		"spec: {operations: {put: {file: {path: a.json}}}}\n":                                                                    `operation "put" writes a file, but the system has no files or sftp settings`,
	} {
		_, err := loadSystem(t, spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\n got %v\nwant %q", spec, err, want)
		}
	}
	if _, err := loadSystem(t, "spec: {sftp: {address: \"h:22\", username: u, password: p, hostKey: \""+testHostKey+"\"}, operations: {put: {file: {path: a.json}}}}\n"); err != nil {
		t.Errorf("a good sftp system: %v", err)
	}
}
