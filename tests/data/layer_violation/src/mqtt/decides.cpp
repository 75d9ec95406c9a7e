// A publisher that reads the ledger to decide: below it, but the layer check must refuse it.
#include "ecu2mqtt/ledger/ecu_ledger.hpp"
