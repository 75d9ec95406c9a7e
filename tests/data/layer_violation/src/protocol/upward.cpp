// A pure decoder that reaches up for the service: the layer check must refuse it.
#include "ecu2mqtt/app/service.hpp"
