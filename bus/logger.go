package bus

import (
	"fmt"
	"log/slog"
)

// natsLogger adapts the embedded server's logger to slog. Fatalf logs at error level and
// returns: Causeway never lets a library exit the process.
type natsLogger struct{ log *slog.Logger }

// Noticef logs the server's routine notices at debug level: they repeat what Causeway logs
// itself about the bus.
func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

// Warnf logs a server warning.
func (l *natsLogger) Warnf(format string, v ...any) { l.log.Warn(fmt.Sprintf(format, v...)) }

// Fatalf logs what the server considers fatal as an error, and returns.
func (l *natsLogger) Fatalf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }

// Errorf logs a server error.
func (l *natsLogger) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }

// Debugf logs server debugging output.
func (l *natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

// Tracef drops protocol traces, which would log every message's content.
func (l *natsLogger) Tracef(format string, v ...any) {}
