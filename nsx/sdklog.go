package nsx

import (
	sdklog "github.com/vmware/vsphere-automation-sdk-go/runtime/log"
	"go.uber.org/zap"
)

// RouteSDKLogs sends the SDK's own log output to l. The SDK keeps its logger
// in a package variable, so this is called once, by main, at start.
func RouteSDKLogs(l *zap.Logger) {
	sdklog.SetLogger(sdkLogger{l.Named("sdk").WithOptions(zap.AddCallerSkip(2)).Sugar()})
}

// sdkLogger adapts zap to the SDK's Logger interface. The SDK is chatty at
// Info about every request, so its Info is our Debug.
type sdkLogger struct{ s *zap.SugaredLogger }

func (l sdkLogger) Error(args ...interface{})            { l.s.Error(args...) }
func (l sdkLogger) Errorf(f string, args ...interface{}) { l.s.Errorf(f, args...) }
func (l sdkLogger) Info(args ...interface{})             { l.s.Debug(args...) }
func (l sdkLogger) Infof(f string, args ...interface{})  { l.s.Debugf(f, args...) }
func (l sdkLogger) Debug(args ...interface{})            { l.s.Debug(args...) }
func (l sdkLogger) Debugf(f string, args ...interface{}) { l.s.Debugf(f, args...) }
