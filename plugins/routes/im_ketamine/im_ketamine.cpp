// im_ketamine: the route plugin for IM ketamine sessions. See README.md.
// It shares its implementation with oral_ketamine: FixedRoute in ../fixed_route/.
#include "../fixed_route/fixed_route.hpp"

namespace clinicflow::routes {
constexpr RouteInfo kImKetamine{"im_ketamine", "IM ketamine"};
}  // namespace clinicflow::routes

CLINICFLOW_PLUGIN(clinicflow::routes::FixedRoutePlugin<clinicflow::routes::kImKetamine>)
