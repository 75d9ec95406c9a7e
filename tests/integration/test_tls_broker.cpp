// A broker over TLS, as users of mqtts:// run it: a trusted certificate connects, and each way a
// handshake fails is named in the log and on the status page, not only "connection failed".
#include "support/service_process.hpp"
#include "support/test_paths.hpp"
#include "support/tls_broker.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using Catch::Contains;
using test::TlsBroker;

namespace test_tls_broker {
namespace {

// The service's log once it has said why it cannot connect (or connected after all).
std::string log_of_failed_connection(const TlsBroker& broker, const std::string& url,
                                     std::vector<std::string> extra = {}) {
    const auto dir = test::make_temp_dir("ecu2mqtt-tls-service");
    extra.insert(extra.begin(), {"--mqtt-url", url});
    std::string log;
    {
        test::ServiceProcess service("mqtt://unused", dir / "state", extra);
        CHECK(service.process().wait_for_output("event=mqtt_tls_failed", 15s));
        log = service.log();
    }
    std::filesystem::remove_all(dir);
    INFO(broker.log());
    CHECK_THAT(log, !Contains("event=mqtt_connected"));
    return log;
}

} // namespace

TEST_CASE("tls: a broker certificate from the given CA, for the host connected to, connects") {
    TlsBroker broker(TlsBroker::Certificate::Valid);
    for (const auto* host : {"127.0.0.1", "localhost"}) {
        const auto dir = test::make_temp_dir("ecu2mqtt-tls-service");
        {
            test::ServiceProcess service(
                "mqtt://unused", dir / "state",
                {"--mqtt-url", broker.url(host), "--mqtt-ca-file", broker.ca_file()});
            INFO(host);
            CHECK(service.process().wait_for_output("event=mqtt_connected", 15s));
            CHECK_THAT(service.log(), !Contains("mqtt_tls_failed"));
        }
        std::filesystem::remove_all(dir);
    }
}

TEST_CASE("tls: a CA the service does not trust is named, with the option that fixes it") {
    TlsBroker broker(TlsBroker::Certificate::Valid);
    // The default: the system CAs, which do not hold the test CA.
    const auto log = log_of_failed_connection(broker, broker.url());
    CHECK_THAT(log, Contains("reason=\"unknown CA: the broker's certificate is not signed by a CA "
                             "trusted here"));
    CHECK_THAT(log, Contains("trusted: the system CAs"));
    CHECK_THAT(log, Contains("--mqtt-ca-file"));
}

TEST_CASE("tls: a certificate issued for another host name is refused and named") {
    TlsBroker broker(TlsBroker::Certificate::OtherHost);
    const auto log =
        log_of_failed_connection(broker, broker.url(), {"--mqtt-ca-file", broker.ca_file()});
    CHECK_THAT(log, Contains("reason=\"hostname mismatch: the broker's certificate is not issued "
                             "for \\\"127.0.0.1\\\""));
}

TEST_CASE("tls: an expired broker certificate is named") {
    TlsBroker broker(TlsBroker::Certificate::Expired);
    const auto log =
        log_of_failed_connection(broker, broker.url(), {"--mqtt-ca-file", broker.ca_file()});
    CHECK_THAT(log, Contains("reason=\"expired certificate"));
}

} // namespace test_tls_broker
