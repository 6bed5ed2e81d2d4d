// Package daemon is the process plumbing every t1route command shares: one
// logger (with client-go's and the NSX SDK's logs routed into it), the
// metrics and health server, and Lease leader election.
package daemon

import (
	"fmt"
	"io"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"

	"github.com/t1route/t1route/nsx"
)

// NewLogger builds the process logger writing to w: JSON by default (for log
// pipelines), console for people at a terminal, at level (debug, info, warn
// or error). client-go (klog) and the NSX SDK keep their loggers in package
// variables, so NewLogger routes both into the new logger: call it once, in
// main, so that a process logs in one format.
func NewLogger(w io.Writer, format, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	switch format {
	case "json", "":
		encoder = zapcore.NewJSONEncoder(enc)
	case "console":
		enc.EncodeLevel = zapcore.CapitalColorLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	default:
		return nil, fmt.Errorf("--log-format %q: want json or console", format)
	}
	log := zap.New(zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), lvl))
	klog.SetLogger(zapr.NewLogger(log.Named("client-go")))
	nsx.RouteSDKLogs(log) // the SDK logs every request to the standard logger otherwise
	return log, nil
}
