package nsxsim

// Wire types of the NSX Policy API objects the simulator holds. Field names and
// JSON keys follow the NSX API reference; only what t1route and its tests use is
// modelled, everything else a client sends is accepted and ignored (as NSX
// ignores read-only fields on input).

// Tag is an NSX tag: scope up to 128 characters, tag up to 256.
type Tag struct {
	Scope string `json:"scope,omitempty"`
	Tag   string `json:"tag,omitempty"`
}

// NextHop is NSX's RouterNexthop.
type NextHop struct {
	IPAddress     string   `json:"ip_address"`
	AdminDistance int64    `json:"admin_distance,omitempty"`
	Scope         []string `json:"scope,omitempty"`
}

// meta holds the system fields NSX fills on every policy object.
type meta struct {
	ResourceType     string `json:"resource_type"`
	Path             string `json:"path"`
	ParentPath       string `json:"parent_path"`
	RelativePath     string `json:"relative_path"`
	UniqueID         string `json:"unique_id"`
	MarkedForDelete  bool   `json:"marked_for_delete"`
	Overridden       bool   `json:"overridden"`
	Revision         int64  `json:"_revision"`
	CreateTime       int64  `json:"_create_time"`
	CreateUser       string `json:"_create_user"`
	LastModifiedTime int64  `json:"_last_modified_time"`
	LastModifiedUser string `json:"_last_modified_user"`
	SystemOwned      bool   `json:"_system_owned"`
	// Protection is filled per reader when an object is served (protection.go).
	Protection string `json:"_protection"`

	protected bool // created by a protected principal identity
}

// StaticRoute is NSX's StaticRoutes object under a Tier-1.
type StaticRoute struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"display_name,omitempty"`
	Description string    `json:"description,omitempty"`
	Network     string    `json:"network"`
	NextHops    []NextHop `json:"next_hops"`
	Tags        []Tag     `json:"tags,omitempty"`
	meta
}

// Tier1 is NSX's Tier1 gateway object, reduced to what matters for routing.
type Tier1 struct {
	ID                      string   `json:"id"`
	DisplayName             string   `json:"display_name,omitempty"`
	Description             string   `json:"description,omitempty"`
	Tier0Path               string   `json:"tier0_path,omitempty"`
	RouteAdvertisementTypes []string `json:"route_advertisement_types"`
	Tags                    []Tag    `json:"tags,omitempty"`
	meta
}

// routeInput is a StaticRoutes body as a client sends it. Pointers tell an
// absent field from a zero one; unknown fields are ignored, known fields of
// the wrong JSON type are a 400.
type routeInput struct {
	ID              *string   `json:"id"`
	DisplayName     *string   `json:"display_name"`
	Description     *string   `json:"description"`
	Network         *string   `json:"network"`
	NextHops        []NextHop `json:"next_hops"`
	Tags            []Tag     `json:"tags"`
	ResourceType    *string   `json:"resource_type"`
	Revision        *int64    `json:"_revision"`
	MarkedForDelete *bool     `json:"marked_for_delete"`
}

// tier1Input is a Tier1 body as a client sends it.
type tier1Input struct {
	ID                      *string  `json:"id"`
	DisplayName             *string  `json:"display_name"`
	Description             *string  `json:"description"`
	Tier0Path               *string  `json:"tier0_path"`
	RouteAdvertisementTypes []string `json:"route_advertisement_types"`
	Tags                    []Tag    `json:"tags"`
	ResourceType            *string  `json:"resource_type"`
	Revision                *int64   `json:"_revision"`
}

// listResult is the envelope of every NSX list and search answer.
type listResult[T any] struct {
	Results       []T    `json:"results"`
	ResultCount   int64  `json:"result_count"`
	Cursor        string `json:"cursor,omitempty"`
	SortBy        string `json:"sort_by,omitempty"`
	SortAscending bool   `json:"sort_ascending"`
}

// realizedEntity is NSX's GenericPolicyRealizedResource.
type realizedEntity struct {
	ID                            string   `json:"id"`
	DisplayName                   string   `json:"display_name"`
	ResourceType                  string   `json:"resource_type"`
	EntityType                    string   `json:"entity_type"`
	IntentPaths                   []string `json:"intent_paths"`
	State                         string   `json:"state"`
	PublishStatus                 string   `json:"publish_status,omitempty"`
	RuntimeStatus                 string   `json:"runtime_status,omitempty"`
	RuntimeError                  string   `json:"runtime_error,omitempty"`
	Path                          string   `json:"path"`
	RealizationSpecificIdentifier string   `json:"realization_specific_identifier"`
	LastModifiedTime              int64    `json:"_last_modified_time"`
	Revision                      int64    `json:"_revision"`
}

// apiErrorBody is NSX's error envelope.
type apiErrorBody struct {
	HTTPStatus    string         `json:"httpStatus,omitempty"`
	ErrorCode     int            `json:"error_code"`
	ModuleName    string         `json:"module_name,omitempty"`
	ErrorMessage  string         `json:"error_message"`
	Details       string         `json:"details,omitempty"`
	RelatedErrors []apiErrorBody `json:"related_errors,omitempty"`
}
