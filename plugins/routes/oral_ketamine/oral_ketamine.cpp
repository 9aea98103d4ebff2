// oral_ketamine: the route plugin for oral ketamine sessions. See README.md.
// It shares its implementation with im_ketamine: FixedRoute in ../fixed_route/.
#include "../fixed_route/fixed_route.hpp"

namespace clinicflow::routes {
constexpr RouteInfo kOralKetamine{"oral_ketamine", "oral ketamine"};
}  // namespace clinicflow::routes

CLINICFLOW_PLUGIN(clinicflow::routes::FixedRoutePlugin<clinicflow::routes::kOralKetamine>)
