package system

import (
	"net"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/causeway/causeway/config"
)

// SFTP is how the platform reaches a system that exchanges files on an SFTP server. File
// operations of such a system write there instead of to a local directory.
type SFTP struct {
	// Address is the server's host:port.
	Address string `yaml:"address" required:"true" doc:"The SFTP server, host:port." example:"files.partner.example:22"`
	// Username is the SSH user.
	Username string `yaml:"username" required:"true" doc:"The SSH user name."`
	// Password authenticates the user; a secret.
	Password config.Secret `yaml:"password" doc:"The user's password. Give password, privateKey or both." example:"${secret:PARTNER_SFTP_PASSWORD}"`
	// PrivateKey authenticates the user; a PEM secret.
	PrivateKey config.Secret `yaml:"privateKey" doc:"The user's private key, PEM (OpenSSH or PKCS#8), unencrypted." example:"${secret:PARTNER_SFTP_KEY}"`
	// HostKey is the server's public key, which the server must prove it holds.
	HostKey string `yaml:"hostKey" required:"true" doc:"The server's public host key in authorized_keys form (ssh-ed25519 AAAA…), as ssh-keyscan prints it without the host name. A server that does not hold it is refused." example:"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAKFYABX7iVfN5nuqduYLC6HQMV3z8SD8cATOIlUm5fv"`
	// Dir is the directory on the server the operations' paths are under.
	Dir string `yaml:"dir" default:"." doc:"The directory on the server that operation paths are under; relative to the login directory unless absolute." example:"/upload/orders"`
	// Timeout bounds connecting and each write.
	Timeout time.Duration `yaml:"timeout" default:"30s" doc:"How long connecting, and then each write, may take."`
}

// validateSFTP checks the SFTP settings.
func (s *Spec) validateSFTP(ctx *config.Context) {
	f := s.SFTP
	if f == nil {
		return
	}
	host, port, err := net.SplitHostPort(f.Address)
	if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
		ctx.Errorf("sftp.address", "%q is not host:port", f.Address)
	}
	if !ctx.Has("sftp.password") && !ctx.Has("sftp.privateKey") {
		ctx.Errorf("sftp", "give password or privateKey")
	}
	if !f.PrivateKey.IsZero() {
		if _, err := ssh.ParsePrivateKey([]byte(f.PrivateKey.Reveal())); err != nil {
			ctx.Errorf("sftp.privateKey", "not an unencrypted PEM private key") // not the key, nor the parser's words about it
		}
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(f.HostKey)); err != nil {
		ctx.Errorf("sftp.hostKey", "not a public key in authorized_keys form (ssh-ed25519 AAAA…): %v", err)
	}
	if s.Files != nil {
		ctx.Errorf("sftp", "give files (a local directory) or sftp, not both: file operations write to one of them")
	}
	if f.Timeout <= 0 {
		ctx.Errorf("sftp.timeout", "must be positive")
	}
}
