// +k8s:deepcopy-gen=package

package v1alpha1

// DeepCopy functions, from the +k8s:deepcopy-gen tags (the code generator
// Kubernetes and Argo CD use for theirs); the version follows client-go's.
//go:generate go run k8s.io/code-generator/cmd/deepcopy-gen@v0.37.0 --output-file zz_generated.deepcopy.go --go-header-file /dev/null .
