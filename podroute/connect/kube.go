package connect

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// KubeConfig resolves the Kubernetes client configuration: the kubeconfig
// file at path if given, else in-cluster, else $KUBECONFIG / ~/.kube/config.
// userAgent names the program to the API server (e.g. t1route/v1.2.3).
func KubeConfig(path, userAgent string) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	switch {
	case path != "":
		rc, err = clientcmd.BuildConfigFromFlags("", path)
	default:
		rc, err = rest.InClusterConfig()
		if err != nil {
			rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("no Kubernetes configuration: %w (give --kubeconfig, run in a pod, or set KUBECONFIG)", err)
	}
	// Node condition patches for thousands of nodes: client-go's default of 5/s is far too low.
	rc.QPS, rc.Burst = 50, 100
	rc.UserAgent = userAgent
	return rc, nil
}

// Kube is the clientset for KubeConfig(path, userAgent).
func Kube(path, userAgent string) (kubernetes.Interface, error) {
	rc, err := KubeConfig(path, userAgent)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}
