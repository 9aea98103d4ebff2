// Boost.URL compiled into the plugin (its header-only mode), so the plugin needs no
// libboost-url package beyond the Boost headers. Include this file in exactly one TU.
#include <boost/url/src.hpp>
