// Internal to common/: how the config parsers show a field's text in a message.
#pragma once

#include <string>
#include <string_view>

namespace gem {

/// `s` in single quotes for an error message: printable ASCII as is, any other byte as \xNN (a
/// stray control byte cannot garble a log line), cut after 64 bytes with "...". Pure.
std::string quote_field(std::string_view s);

}  // namespace gem
