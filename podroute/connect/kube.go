package connect

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/t1route/t1route/podroute"
)

// The main client's rate limit: client-go's default of 5/s is too low for
// the controller's events and lists; node condition patches, the one call
// counted in thousands, have their own client (ControllerClients).
const (
	KubeQPS   = 50
	KubeBurst = 100
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
	rc.QPS, rc.Burst = KubeQPS, KubeBurst
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

const protobuf = "application/vnd.kubernetes.protobuf"

// ControllerClients are the route controller's clientsets on rc's server
// and credentials, each with its own client-side rate limiter.
type ControllerClients struct {
	// Kube makes every call but node status patches, at KubeQPS.
	Kube kubernetes.Interface
	// NodeStatus patches node conditions, at podroute.NodeStatusQPS (see
	// there for the sizing): 10,000 patches never queue the lease renewals,
	// events and lists of Kube behind them.
	NodeStatus kubernetes.Interface
}

// NewControllerClients builds the controller's clientsets from rc (copied;
// its QPS and Burst are replaced); nodeStatusQPS is the node status
// client's rate (config.Config.NodeStatusQPS; 0: podroute.NodeStatusQPS). Both speak protobuf, as Kubernetes' own
// controllers do: the controller only uses built-in types, and at 10,000
// nodes decoding the node list and every patched node's watch event and
// patch answer as JSON costs the controller and the API server several
// times the CPU.
func NewControllerClients(rc *rest.Config, nodeStatusQPS float64) (ControllerClients, error) {
	if nodeStatusQPS <= 0 {
		nodeStatusQPS = podroute.NodeStatusQPS
	}
	main := rest.CopyConfig(rc)
	main.QPS, main.Burst, main.RateLimiter = KubeQPS, KubeBurst, nil
	main.ContentType, main.AcceptContentTypes = protobuf, protobuf+",application/json"
	kube, err := kubernetes.NewForConfig(main)
	if err != nil {
		return ControllerClients{}, err
	}
	status := rest.CopyConfig(rc)
	status.QPS, status.Burst, status.RateLimiter = float32(nodeStatusQPS), podroute.NodeStatusBurst, nil
	status.ContentType, status.AcceptContentTypes = main.ContentType, main.AcceptContentTypes
	nodeStatus, err := kubernetes.NewForConfig(status)
	if err != nil {
		return ControllerClients{}, err
	}
	return ControllerClients{Kube: kube, NodeStatus: nodeStatus}, nil
}
