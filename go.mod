module github.com/t1route/t1route

go 1.26.0

require (
	github.com/hashicorp/go-retryablehttp v0.7.8
	github.com/spf13/cobra v1.10.1
	github.com/vmware/vsphere-automation-sdk-go/runtime v0.7.0
	github.com/vmware/vsphere-automation-sdk-go/services/nsxt v0.12.0
	go.uber.org/zap v1.27.1
	golang.org/x/time v0.16.0
)

require (
	github.com/beevik/etree v1.1.0 // indirect
	github.com/gibson042/canonicaljson-go v1.0.3 // indirect
	github.com/golang-jwt/jwt/v4 v4.3.0 // indirect
	github.com/google/uuid v1.2.0 // indirect
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	github.com/vmware/vsphere-automation-sdk-go/lib v0.7.0 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	golang.org/x/text v0.7.0 // indirect
)
