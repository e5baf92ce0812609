#include "io/xml.h"

#include <cstring>

namespace ddcsr::xml {

const Element* Element::child(const std::string& child_name) const {
  for (const auto& c : children)
    if (c->name == child_name) return c.get();
  return nullptr;
}

std::vector<const Element*> Element::children_named(const std::string& child_name) const {
  std::vector<const Element*> out;
  for (const auto& c : children)
    if (c->name == child_name) out.push_back(c.get());
  return out;
}

std::string Element::attribute(const std::string& key, const std::string& fallback) const {
  const auto it = attributes.find(key);
  return it == attributes.end() ? fallback : it->second;
}

namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(const std::string& doc) : s_(doc) {}

  std::unique_ptr<Element> document() {
    skip_misc();
    if (!starts_with("<")) fail("no root element");
    auto root = element(0);
    skip_misc();
    if (pos_ != s_.size()) fail("content after the root element");
    return root;
  }

 private:
  const std::string& s_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw ParseError("XML error at byte " + std::to_string(pos_) + ": " + what);
  }
  bool starts_with(const char* t) const { return s_.compare(pos_, std::strlen(t), t) == 0; }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void skip_past(const char* terminator) {
    const size_t end = s_.find(terminator, pos_);
    if (end == std::string::npos) fail(std::string("missing '") + terminator + "'");
    pos_ = end + std::strlen(terminator);
  }
  // Prolog, comments, processing instructions and DOCTYPE between elements.
  void skip_misc() {
    for (;;) {
      skip_space();
      if (starts_with("<?"))
        skip_past("?>");
      else if (starts_with("<!--"))
        skip_past("-->");
      else if (starts_with("<!DOCTYPE"))
        skip_doctype();
      else
        return;
    }
  }
  void skip_doctype() {
    int depth = 0;
    for (; pos_ < s_.size(); ++pos_) {
      if (s_[pos_] == '[')
        ++depth;
      else if (s_[pos_] == ']')
        --depth;
      else if (s_[pos_] == '>' && depth <= 0) {
        ++pos_;
        return;
      }
    }
    fail("unterminated DOCTYPE");
  }
  std::string name() {
    const size_t start = pos_;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':' || c == '-' ||
          c == '.')
        ++pos_;
      else
        break;
    }
    if (pos_ == start) fail("expected a name");
    return s_.substr(start, pos_ - start);
  }
  std::string decode_entities(const std::string& raw) const {
    std::string out;
    out.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '&') {
        out += raw[i];
        continue;
      }
      const size_t semi = raw.find(';', i);
      if (semi == std::string::npos || semi - i > 10) throw ParseError("XML error: bad entity");
      const std::string ent = raw.substr(i + 1, semi - i - 1);
      if (ent == "lt")
        out += '<';
      else if (ent == "gt")
        out += '>';
      else if (ent == "amp")
        out += '&';
      else if (ent == "quot")
        out += '"';
      else if (ent == "apos")
        out += '\'';
      else if (!ent.empty() && ent[0] == '#') {
        unsigned long code = 0;
        try {
          code = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X')
                     ? std::stoul(ent.substr(2), nullptr, 16)
                     : std::stoul(ent.substr(1));
        } catch (...) {
          throw ParseError("XML error: bad character reference");
        }
        if (code < 0x80)
          out += static_cast<char>(code);
        else
          out += '?';  // GIFTI content that matters is ASCII
      } else {
        throw ParseError("XML error: unknown entity &" + ent + ";");
      }
      i = semi;
    }
    return out;
  }
  std::unique_ptr<Element> element(int depth) {
    if (depth > kMaxDepth) fail("elements nested too deeply");
    ++pos_;  // '<'
    auto el = std::make_unique<Element>();
    el->name = name();
    for (;;) {
      skip_space();
      if (pos_ >= s_.size()) fail("unterminated start tag <" + el->name + ">");
      if (starts_with("/>")) {
        pos_ += 2;
        return el;
      }
      if (s_[pos_] == '>') {
        ++pos_;
        break;
      }
      const std::string key = name();
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '=') fail("expected '=' after attribute " + key);
      ++pos_;
      skip_space();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\''))
        fail("expected a quoted value");
      const char quote = s_[pos_++];
      const size_t end = s_.find(quote, pos_);
      if (end == std::string::npos) fail("unterminated attribute value");
      el->attributes[key] = decode_entities(s_.substr(pos_, end - pos_));
      pos_ = end + 1;
    }
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated element <" + el->name + ">");
      if (starts_with("</")) {
        pos_ += 2;
        const std::string closing = name();
        if (closing != el->name) fail("</" + closing + "> closes <" + el->name + ">");
        skip_space();
        if (pos_ >= s_.size() || s_[pos_] != '>') fail("bad end tag");
        ++pos_;
        return el;
      }
      if (starts_with("<![CDATA[")) {
        pos_ += 9;
        const size_t end = s_.find("]]>", pos_);
        if (end == std::string::npos) fail("unterminated CDATA");
        el->text.append(s_, pos_, end - pos_);
        pos_ = end + 3;
      } else if (starts_with("<!--")) {
        skip_past("-->");
      } else if (starts_with("<?")) {
        skip_past("?>");
      } else if (s_[pos_] == '<') {
        el->children.push_back(element(depth + 1));
      } else {
        const size_t end = s_.find('<', pos_);
        if (end == std::string::npos) fail("unterminated element <" + el->name + ">");
        el->text += decode_entities(s_.substr(pos_, end - pos_));
        pos_ = end;
      }
    }
  }
};

}  // namespace

std::unique_ptr<Element> parse(const std::string& document) { return Parser(document).document(); }

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace ddcsr::xml
