// The --pvoutput-* options together: a key needs a system and a system a key; the key never
// appears in a message; the mapping the uploader gets.
#include "ecu2mqtt/app/options.hpp"
#include "ecu2mqtt/app/pvoutput_options.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;

namespace test_pvoutput_options {
namespace {

CommandLine parse(std::vector<std::string> args) {
    return parse_command_line(args, {{"HOME", "/home/pv"}});
}

} // namespace

TEST_CASE("PVOutput is off by default and on with a key and a system", "[pvoutput]") {
    CHECK_FALSE(pvoutput_enabled(parse({}).options));
    const auto o =
        parse({"--pvoutput-api-key", "abc123", "--pvoutput-system-id", "4242", "--pvoutput-systems",
               "216000064136=1, 216000064137=1", "--pvoutput-interval", "10", "--pvoutput-donor"})
            .options;
    CHECK(pvoutput_enabled(o));
    CHECK(o.pvoutput_url == "https://pvoutput.org");
    CHECK(o.pvoutput_donor);
    const auto mapping = pvoutput_mapping(o);
    CHECK(mapping.interval_min == 10);
    CHECK(mapping.system_for("216000064136") == "1");
    CHECK(mapping.system_for("216000099999") == "4242");
    CHECK(mapping.ecus_named_for("1").size() == 2);
}

TEST_CASE("a PVOutput key needs a system, a system needs a key", "[pvoutput]") {
    CHECK_THROWS_WITH(parse({"--pvoutput-api-key", "abc123"}),
                      Catch::Contains("--pvoutput-api-key") &&
                          Catch::Contains("--pvoutput-system-id"));
    CHECK_THROWS_WITH(parse({"--pvoutput-system-id", "4242"}),
                      Catch::StartsWith("--pvoutput-system-id") &&
                          Catch::Contains("--pvoutput-api-key"));
    CHECK_THROWS_WITH(parse({"--pvoutput-systems", "216000064136=1"}),
                      Catch::StartsWith("--pvoutput-systems"));
}

TEST_CASE("a bad PVOutput key is refused without repeating it", "[pvoutput]") {
    const std::string key = "secret key\twith blanks";
    try {
        parse({"--pvoutput-api-key", key, "--pvoutput-system-id", "1"});
        FAIL("accepted");
    } catch (const OptionError& e) {
        const std::string what = e.what();
        CHECK_THAT(what, Catch::StartsWith("--pvoutput-api-key: "));
        CHECK(what.find("secret") == std::string::npos);
    }
}

TEST_CASE("a PVOutput system id is a number from 1", "[pvoutput]") {
    for (const auto* zero : {"0", "0000000000"}) {
        CHECK_THROWS_WITH(parse({"--pvoutput-api-key", "k", "--pvoutput-system-id", zero}),
                          Catch::StartsWith("--pvoutput-system-id: ") &&
                              Catch::Contains("a number from 1"));
        CHECK_THROWS_WITH(parse({"--pvoutput-api-key", "k", "--pvoutput-systems",
                                 std::string("216000064136=") + zero}),
                          Catch::StartsWith("--pvoutput-systems: "));
    }
    CHECK(parse({"--pvoutput-api-key", "k", "--pvoutput-system-id", "0100"})
              .options.pvoutput_system_id == "0100");
}

TEST_CASE("history --pvoutput refuses a selection it would not apply", "[pvoutput]") {
    for (const auto& extra : std::vector<std::vector<std::string>>{{"--from", "2026-12-01"},
                                                                   {"--to", "2026-12-01"},
                                                                   {"--ecu", "216000064136"},
                                                                   {"--curve"}}) {
        std::vector<std::string> args{"history", "--pvoutput"};
        args.insert(args.end(), extra.begin(), extra.end());
        CHECK_THROWS_WITH(parse(args), Catch::StartsWith("history: --pvoutput lists the whole"));
    }
    CHECK(parse({"history", "--pvoutput"}).history.pvoutput);
}

} // namespace test_pvoutput_options
