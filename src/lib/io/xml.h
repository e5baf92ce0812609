// A small, strict XML reader: enough for GIFTI (elements, attributes, text, CDATA, entities),
// with bounded recursion so hostile files cannot exhaust the stack.
#pragma once
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ddcsr::xml {

struct Element {
  std::string name;
  std::map<std::string, std::string> attributes;
  std::string text;  // concatenated character data directly inside this element
  std::vector<std::unique_ptr<Element>> children;

  const Element* child(const std::string& child_name) const;
  std::vector<const Element*> children_named(const std::string& child_name) const;
  std::string attribute(const std::string& key, const std::string& fallback = "") const;
};

struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses a document and returns its root element; throws ParseError with a byte offset.
std::unique_ptr<Element> parse(const std::string& document);

// Escapes text for element content or attribute values.
std::string escape(const std::string& text);

}  // namespace ddcsr::xml
