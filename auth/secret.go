package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"go.uber.org/zap"
)

// Keys of the credentials Secret.
const (
	SecretUsernameKey = "username"
	SecretPasswordKey = "password"
)

// ErrNotReady is wrapped by SecretCredentials' errors while it has no usable credentials.
var ErrNotReady = errors.New("NSX credentials not ready")

// SecretCredentials reads the user name and password from one Kubernetes
// Secret (keys username and password) and watches it: a rotated Secret takes
// effect on the next request, without a restart. A missing Secret or key is
// a not-ready state with a message saying what to fix, never a crash. It
// watches only that Secret (a field selector on its name), so RBAC can grant
// get/list/watch on it alone.
type SecretCredentials struct {
	Client          kubernetes.Interface
	Namespace, Name string
	Logger          *zap.Logger

	mu       sync.Mutex
	user     string
	pass     string
	version  uint64
	notReady error
}

// String never shows the credentials.
func (s *SecretCredentials) String() string {
	return fmt.Sprintf("Secret %s/%s (keys %s, %s)", s.Namespace, s.Name, SecretUsernameKey, SecretPasswordKey)
}

// Run watches the Secret until ctx ends; it returns once the first list is done.
func (s *SecretCredentials) Run(ctx context.Context) error {
	if s.Logger == nil {
		s.Logger = zap.NewNop()
	}
	factory := informers.NewSharedInformerFactoryWithOptions(s.Client, 0,
		informers.WithNamespace(s.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=" + s.Name }))
	inf := factory.Core().V1().Secrets().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.update(obj) },
		UpdateFunc: func(_, obj any) { s.update(obj) },
		DeleteFunc: func(any) {
			s.setNotReady(fmt.Errorf("%w: Secret %s/%s was deleted; create it with keys %q and %q", ErrNotReady, s.Namespace, s.Name, SecretUsernameKey, SecretPasswordKey))
		},
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("watching Secret %s/%s: %w", s.Namespace, s.Name, ctx.Err())
	}
	if len(inf.GetStore().List()) == 0 {
		s.setNotReady(fmt.Errorf("%w: Secret %s/%s does not exist; create it with keys %q and %q (kubectl -n %s create secret generic %s --from-literal=%s=... --from-literal=%s=...)",
			ErrNotReady, s.Namespace, s.Name, SecretUsernameKey, SecretPasswordKey, s.Namespace, s.Name, SecretUsernameKey, SecretPasswordKey))
	}
	return nil
}

func (s *SecretCredentials) update(obj any) {
	sec, ok := obj.(*corev1.Secret)
	if !ok || sec.Name != s.Name {
		return
	}
	user, pass := string(sec.Data[SecretUsernameKey]), string(sec.Data[SecretPasswordKey])
	var missing []string
	if user == "" {
		missing = append(missing, SecretUsernameKey)
	}
	if pass == "" {
		missing = append(missing, SecretPasswordKey)
	}
	if len(missing) > 0 {
		s.setNotReady(fmt.Errorf("%w: Secret %s/%s has no (or an empty) key %q; it needs keys %q and %q",
			ErrNotReady, s.Namespace, s.Name, missing[0], SecretUsernameKey, SecretPasswordKey))
		return
	}
	s.mu.Lock()
	changed := user != s.user || pass != s.pass || s.notReady != nil
	if changed {
		s.user, s.pass, s.notReady = user, pass, nil
		s.version++
	}
	s.mu.Unlock()
	if changed {
		s.Logger.Info("NSX credentials read from Secret", zap.String("secret", s.Namespace+"/"+s.Name), zap.String("user", user), zap.String("resource_version", sec.ResourceVersion))
	}
}

func (s *SecretCredentials) setNotReady(err error) {
	s.mu.Lock()
	same := s.notReady != nil && s.notReady.Error() == err.Error()
	s.notReady = err
	s.mu.Unlock()
	if !same && s.Logger != nil {
		s.Logger.Warn("NSX credentials not ready", zap.Error(err))
	}
}

// Get implements Credentials.
func (s *SecretCredentials) Get() (string, string, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.notReady != nil:
		return "", "", 0, &CredentialError{Err: s.notReady}
	case s.version == 0: // Run has not read the Secret yet
		return "", "", 0, &CredentialError{Err: fmt.Errorf("%w: Secret %s/%s not read yet", ErrNotReady, s.Namespace, s.Name)}
	}
	return s.user, s.pass, s.version, nil
}

// Ready returns nil once usable credentials were read, or why not.
func (s *SecretCredentials) Ready() error {
	_, _, _, err := s.Get()
	return err
}
