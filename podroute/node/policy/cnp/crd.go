package cnp

import _ "embed"

// crd is the upstream CRD, standard channel, unchanged (see its header).
//
//go:embed crd.yaml
var crd []byte

// CRD returns the ClusterNetworkPolicy CustomResourceDefinition t1route
// installs: sigs.k8s.io/network-policy-api v0.3.0's standard channel, which
// serves v1alpha2 and v1beta1 (storage). The experimental channel's fields
// (nodes and domainNames peers, destinationNamedPort) are not in it.
func CRD() []byte { return crd }

// CRDName is the CRD's metadata.name.
const CRDName = "clusternetworkpolicies.policy.networking.k8s.io"
