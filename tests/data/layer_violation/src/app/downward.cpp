// Reaching down is allowed.
#include "ecu2mqtt/protocol/decoder.hpp"
