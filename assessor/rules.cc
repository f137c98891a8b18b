#include "assessor/rules.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "common/json_depth.h"
#include "common/text_scan.h"

namespace assessq::offline {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

// --------------------------------------------------------------- strings

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && IsAsciiSpace(s[b])) ++b;
  while (e > b && IsAsciiSpace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string Lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

bool Contains(const std::string& haystack, const char* needle) {
  return haystack.find(needle) != std::string::npos;
}

bool Has(const std::vector<std::string>& list, const char* value) {
  for (const auto& v : list)
    if (Lower(Trim(v)) == value) return true;
  return false;
}

size_t Utf8Length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// At most `max` characters of UTF-8 `s`, with "…" when cut.
std::string Clip(const std::string& s, size_t max) {
  if (Utf8Length(s) <= max) return s;
  size_t n = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (n == max) break;
      ++n;
    }
  }
  return s.substr(0, i) + "…";
}

size_t WordCount(const std::string& s) {
  size_t n = 0;
  bool in_word = false;
  for (char c : s) {
    if (IsAsciiSpace(c)) {
      in_word = false;
    } else if (!in_word) {
      in_word = true;
      ++n;
    }
  }
  return n;
}

// "A وB وC": Arabic joins each further item with a prefixed "و".
std::string JoinArabic(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += " و";
    out += items[i];
  }
  return out;
}

// 101000000000 -> "101,000,000,000"; 2.5 -> "2.5".
std::string FormatNumber(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) {
    std::string digits = std::to_string(static_cast<int64_t>(std::fabs(v)));
    std::string out;
    for (size_t i = 0; i < digits.size(); ++i) {
      if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
      out += digits[i];
    }
    return v < 0 ? "-" + out : out;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// The detailed sentence when its letters stay mostly Arabic (with margin),
// else the plain one (which has no Latin inserts).
std::string Guarded(const std::string& detailed, const std::string& plain) {
  return ArabicShare(detailed) >= 0.6 ? detailed : plain;
}

// ----------------------------------------------------------- vocabularies

const std::map<std::string, std::string>& TaskNames() {
  static const auto* kTasks = new std::map<std::string, std::string>{
      {"machine translation", "الترجمة الآلية"},
      {"speech recognition", "التعرف على الكلام"},
      {"language modeling", "النمذجة اللغوية"},
      {"sentiment analysis", "تحليل المشاعر"},
      {"question answering", "الإجابة عن الأسئلة"},
      {"topic classification", "تصنيف الموضوعات"},
      {"dialect identification", "تحديد اللهجة"},
      {"named entity recognition", "التعرف على الكيانات المسماة"},
      {"information retrieval", "استرجاع المعلومات"},
      {"multiple choice question answering", "الإجابة عن أسئلة الاختيار من متعدد"},
      {"part of speech tagging", "وسم أقسام الكلام"},
      {"morphological analysis", "التحليل الصرفي"},
      {"instruction tuning", "الضبط بالتعليمات"},
      {"optical character recognition", "التعرف الضوئي على الحروف"},
      {"offensive language detection", "كشف اللغة المسيئة"},
      {"emotion classification", "تصنيف العواطف"},
      {"summarization", "التلخيص الآلي"},
      {"language identification", "تحديد اللغة"},
      {"natural language inference", "الاستدلال اللغوي الطبيعي"},
      {"hate speech detection", "كشف خطاب الكراهية"},
      {"transliteration", "النقحرة"},
      {"speaker identification", "تحديد هوية المتحدث"},
      {"safety evaluation", "تقييم السلامة"},
      {"diacritization", "التشكيل الآلي"},
      {"review classification", "تصنيف المراجعات"},
      {"fact checking", "التحقق من الحقائق"},
      {"text classification", "تصنيف النصوص"},
      {"sign language recognition", "التعرف على لغة الإشارة"},
      {"commonsense reasoning", "الاستدلال بالحس السليم"},
      {"preference optimization", "تحسين التفضيلات"},
      {"gender identification", "تحديد الجنس"},
      {"stance detection", "كشف الموقف"},
      {"text to speech", "تحويل النص إلى كلام"},
      {"fake news detection", "كشف الأخبار الزائفة"},
      {"semantic similarity", "التشابه الدلالي"},
      {"codeswitch detection", "كشف التناوب اللغوي"},
      {"image captioning", "وصف الصور"},
      {"retrieval-augmented generation", "التوليد المعزز بالاسترجاع"},
      {"dialogue generation", "توليد الحوار"},
      {"readability assessment", "تقييم المقروئية"},
      {"hallucination detection", "كشف الهلوسة"},
      {"keyphrase extraction", "استخراج العبارات المفتاحية"},
      {"word sense disambiguation", "توضيح معاني الكلمات"},
      {"irony detection", "كشف التهكم"},
      {"ai-generated text detection", "كشف النصوص المولدة آليًا"},
      {"gender bias detection", "كشف التحيز الجنساني"},
      {"propaganda detection", "كشف الدعاية"},
      {"answer grading", "تقييم الإجابات"},
      {"dependency parsing", "التحليل النحوي الاعتمادي"},
      {"lexicon analysis", "تحليل المعاجم"},
      {"dictionary", "بناء المعاجم"},
      {"event detection", "كشف الأحداث"},
      {"intent detection", "كشف النوايا"},
      {"coreference resolution", "حل الإحالة المرجعية"},
      {"sarcasm detection", "كشف السخرية"},
      {"fill-in-the blank", "ملء الفراغات"},
      {"misspelling detection", "كشف الأخطاء الإملائية"},
      {"poetry analysis", "تحليل الشعر"},
      {"embedding evaluation", "تقييم التمثيلات المتجهية"},
      {"bias detection", "كشف التحيز"},
      {"tokenization", "التقطيع إلى وحدات"},
      {"meter classification", "تصنيف البحور الشعرية"},
      {"grammatical analysis", "التحليل النحوي"},
      {"text generation", "توليد النصوص"},
      {"code generation", "توليد الشيفرات البرمجية"},
      {"relation extraction", "استخراج العلاقات"},
      {"instruction following", "اتباع التعليمات"},
      {"stemming", "التجذيع"},
      {"lemmatization", "رد الكلمات إلى مداخلها المعجمية"},
      {"author profiling", "تنميط المؤلفين"},
      {"text-to-sql generation", "تحويل النصوص إلى استعلامات قواعد البيانات"},
      {"agentic ai evaluation", "تقييم الوكلاء الذكيين"},
      {"paraphrase identification", "كشف إعادة الصياغة"},
      {"spam detection", "كشف الرسائل المزعجة"},
      {"cross-lingual information retrieval", "استرجاع المعلومات عبر اللغات"},
      {"entity retrieval", "استرجاع الكيانات"},
      {"scene text detection", "كشف النصوص في الصور الملتقطة"},
      {"crisis detection", "كشف الأزمات"},
      {"deepfake detection", "كشف التزييف العميق"},
      {"grammatical error correction", "تصحيح الأخطاء النحوية"},
      {"event linking", "ربط الأحداث"},
      {"visual question answering", "الإجابة عن الأسئلة المرئية"},
      {"multimodal evaluation", "التقييم متعدد الوسائط"},
      {"syntactic parsing", "التحليل التركيبي"},
      {"video generation", "توليد مقاطع الفيديو"},
      {"stop words", "تحديد كلمات التوقف"},
      {"authorship attribution", "نسبة النصوص إلى مؤلفيها"},
      {"misinformation detection", "كشف المعلومات المضللة"},
      {"educational value of web documents", "تقدير القيمة التعليمية لصفحات الويب"},
      {"llm judge evaluation", "تقييم النماذج اللغوية بوصفها محكمين"},
      {"answerable questions detection", "كشف الأسئلة القابلة للإجابة"},
      {"information extraction", "استخراج المعلومات"},
      {"troll detection", "كشف المتصيدين"},
      {"humor detection", "كشف الفكاهة"},
      {"spoken term detection", "كشف المصطلحات المنطوقة"},
      {"plagiarism detection", "كشف الانتحال"},
      {"document type classification", "تصنيف أنواع الوثائق"},
      {"linking", "ربط الكيانات"},
      {"emotion detection", "كشف العواطف"},
      {"disease identification", "تحديد الأمراض"},
      {"spoken language modeling", "النمذجة اللغوية للكلام المنطوق"},
      {"hashtag prediction", "التنبؤ بالوسوم"},
      {"knowledge graphs", "بناء الرسوم المعرفية"},
      {"table to text", "تحويل الجداول إلى نصوص"},
      {"semantic role labeling", "وسم الأدوار الدلالية"},
      {"knowledge editing", "تحرير المعرفة في النماذج"},
      {"speech act classification", "تصنيف أفعال الكلام"},
      {"word similarity", "تشابه الكلمات"},
      {"punctuation detection", "استعادة علامات الترقيم"},
      {"multiword expression identification", "تحديد التعابير متعددة الكلمات"},
      {"function calling", "استدعاء الدوال"},
      {"mental health detection", "كشف مؤشرات الصحة النفسية"},
      {"word prediction", "التنبؤ بالكلمات"},
      {"linguistic acceptability", "المقبولية اللغوية"},
      {"commonsense validation", "التحقق بالحس السليم"},
      {"math solving", "حل المسائل الرياضية"},
      {"text simplification", "تبسيط النصوص"},
      {"handwriting recognition", "التعرف على خط اليد"},
      {"misogyny identification", "كشف كراهية النساء"},
      {"debate analysis", "تحليل المناظرات"},
      {"financial analysis", "التحليل المالي"},
      {"semantic parsing", "التحليل الدلالي"},
  };
  return *kTasks;
}

// The dialect as a noun phrase ("اللهجة المصرية"); "" when unknown.
std::string DialectNoun(const std::string& dialect) {
  static const auto* kDialects = new std::map<std::string, std::string>{
      {"classical arabic", "العربية الفصحى التراثية"},
      {"modern standard arabic", "العربية الفصحى المعاصرة"},
      {"mixed", "لهجات عربية متعددة"},
      {"united arab emirates", "اللهجة الإماراتية"},
      {"bahrain", "اللهجة البحرينية"},
      {"djibouti", "اللهجة الجيبوتية"},
      {"algeria", "اللهجة الجزائرية"},
      {"egypt", "اللهجة المصرية"},
      {"iraq", "اللهجة العراقية"},
      {"jordan", "اللهجة الأردنية"},
      {"comoros", "اللهجة القمرية"},
      {"kuwait", "اللهجة الكويتية"},
      {"lebanon", "اللهجة اللبنانية"},
      {"libya", "اللهجة الليبية"},
      {"morocco", "اللهجة المغربية"},
      {"mauritania", "اللهجة الموريتانية"},
      {"oman", "اللهجة العمانية"},
      {"palestine", "اللهجة الفلسطينية"},
      {"qatar", "اللهجة القطرية"},
      {"saudi arabia", "اللهجة السعودية"},
      {"sudan", "اللهجة السودانية"},
      {"somalia", "اللهجة الصومالية"},
      {"south sudan", "لهجة جنوب السودان"},
      {"syria", "اللهجة السورية"},
      {"tunisia", "اللهجة التونسية"},
      {"yemen", "اللهجة اليمنية"},
      {"levant", "اللهجة الشامية"},
      {"north africa", "اللهجة المغاربية"},
      {"gulf", "اللهجة الخليجية"},
  };
  auto it = kDialects->find(Lower(Trim(dialect)));
  return it == kDialects->end() ? "" : it->second;
}

// {singular, plural} of a Masader unit.
std::pair<std::string, std::string> UnitNouns(const std::string& unit) {
  const std::string u = Lower(Trim(unit));
  if (u == "tokens") return {"كلمة", "كلمات"};
  if (u == "sentences") return {"جملة", "جمل"};
  if (u == "documents") return {"وثيقة", "وثائق"};
  if (u == "conversations") return {"محادثة", "محادثات"};
  if (u == "images") return {"صورة", "صور"};
  if (u == "videos") return {"مقطع فيديو", "مقاطع فيديو"};
  if (u == "hours") return {"ساعة", "ساعات"};
  return {"", ""};
}

// "2,500 جملة" / "7 جمل": counts whose last two digits are 3..10 take the
// plural, every other count the singular.
std::string Quantity(double volume, const std::string& unit) {
  auto [singular, plural] = UnitNouns(unit);
  if (singular.empty()) return FormatNumber(volume) + " وحدة";
  bool use_plural = false;
  if (std::floor(volume) == volume && volume < 1e15) {
    const int64_t last2 = static_cast<int64_t>(volume) % 100;
    use_plural = last2 >= 3 && last2 <= 10;
  }
  return FormatNumber(volume) + " " + (use_plural ? plural : singular);
}

std::string FormPhrase(const std::string& form) {
  const std::string f = Lower(Trim(form));
  if (f == "text") return "مجموعة نصية";
  if (f == "audio") return "مجموعة صوتية";
  if (f == "images") return "مجموعة صور";
  if (f == "videos") return "مجموعة مقاطع فيديو";
  return "مجموعة بيانات";
}

std::string VenueTypeNoun(const std::string& type) {
  const std::string t = Lower(Trim(type));
  if (t == "conference") return "مؤتمر علمي محكم";
  if (t == "journal") return "مجلة علمية محكمة";
  if (t == "workshop") return "ورشة عمل علمية";
  if (t == "preprint") return "مستودع للنسخ الأولية";
  return "";
}

bool IsStableHost(const std::string& host) {
  static const std::set<std::string> kStable = {
      "huggingface", "github", "gitlab", "zenodo", "mendeley data", "codalab", "kaggle",
      "sourceforge", "camel resources", "qcri resources", "mozilla"};
  return kStable.count(Lower(Trim(host))) > 0;
}

bool IsCatalogueHost(const std::string& host) {
  const std::string h = Lower(Trim(host));
  return h == "ldc" || h == "elra";
}

// Sources whose content is public or edited, so privacy risk is limited.
bool IsLowRiskSource(const std::string& source) {
  static const std::set<std::string> kLow = {"news articles", "books",  "wikipedia",
                                             "treebanks",     "public datasets",
                                             "manual construction", "subtitles", "captions"};
  return kLow.count(Lower(Trim(source))) > 0;
}

// Sources curated by their authors (collection style).
bool IsCuratedSource(const std::string& source) {
  static const std::set<std::string> kCurated = {"manual construction", "treebanks",
                                                 "studio recordings",   "books",
                                                 "news articles",       "wikipedia"};
  return kCurated.count(Lower(Trim(source))) > 0;
}

// --------------------------------------------------------------- reading

// Looks up "HF Link" or "HF_Link"; null when absent.
const json* Get(const json& md, const std::string& key) {
  auto it = md.find(key);
  if (it == md.end()) {
    std::string alt = key;
    std::replace(alt.begin(), alt.end(), ' ', '_');
    it = md.find(alt);
  }
  if (it == md.end() || it->is_null()) return nullptr;
  return &*it;
}

struct Reader {
  const json& md;
  std::string* error;
  bool ok = true;

  void Fail(const std::string& key, const std::string& message) {
    if (!ok) return;
    ok = false;
    *error = "field \"" + key + "\": " + message;
  }
  void Str(const std::string& key, std::string* out) {
    const json* v = Get(md, key);
    if (v == nullptr) return;
    if (!v->is_string()) return Fail(key, "must be a string");
    *out = Trim(v->get<std::string>());
  }
  void List(const std::string& key, std::vector<std::string>* out) {
    const json* v = Get(md, key);
    if (v == nullptr) return;
    if (v->is_string()) {  // a single value where a list is expected
      if (!Trim(v->get<std::string>()).empty()) out->push_back(Trim(v->get<std::string>()));
      return;
    }
    if (!v->is_array()) return Fail(key, "must be a list of strings");
    for (const auto& e : *v) {
      if (!e.is_string()) return Fail(key, "must be a list of strings");
      std::string s = Trim(e.get<std::string>());
      if (!s.empty()) out->push_back(s);
    }
  }
  void Bool(const std::string& key, std::optional<bool>* out) {
    const json* v = Get(md, key);
    if (v == nullptr) return;
    if (!v->is_boolean()) return Fail(key, "must be true or false");
    *out = v->get<bool>();
  }
  void Number(const std::string& key, std::optional<double>* out) {
    const json* v = Get(md, key);
    if (v == nullptr) return;
    if (!v->is_number()) return Fail(key, "must be a number");
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < 0) return Fail(key, "must be a non-negative number");
    *out = d;
  }
  void Year(const std::string& key, std::optional<int>* out) {
    const json* v = Get(md, key);
    if (v == nullptr) return;
    if (!v->is_number()) return Fail(key, "must be a number");
    const double d = v->get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || d < 0 || d > 9999)
      return Fail(key, "must be a whole year");
    if (d > 0) *out = static_cast<int>(d);
  }
};

CriterionResult Clamp(CriterionResult r, int max = 100) {
  r.score = std::clamp(r.score, 0, max);
  return r;
}

void Good(CriterionResult* r, std::string text) { r->notes.push_back({true, std::move(text)}); }
void Bad(CriterionResult* r, std::string text) { r->notes.push_back({false, std::move(text)}); }

}  // namespace

// --------------------------------------------------------------- criteria

const char* CriterionKey(Criterion c) {
  switch (c) {
    case kAccess: return "سهولة_الوصول";
    case kDocumentation: return "التوثيق";
    case kEthics: return "السلامة_الأخلاقية";
    case kLicense: return "الترخيص";
    case kReproducibility: return "قابلية_إعادة_الإنتاج";
    case kPeerReview: return "المراجعة_العلمية";
    case kDataQuality: return "جودة_البيانات";
    default: return "";
  }
}

const char* CriterionLabel(Criterion c) {
  switch (c) {
    case kAccess: return "سهولة الوصول";
    case kDocumentation: return "التوثيق";
    case kEthics: return "السلامة الأخلاقية";
    case kLicense: return "الترخيص";
    case kReproducibility: return "قابلية إعادة الإنتاج";
    case kPeerReview: return "المراجعة العلمية";
    case kDataQuality: return "جودة البيانات";
    default: return "";
  }
}

int CriterionWeight(Criterion c) {
  switch (c) {
    case kEthics: return 10;
    case kAccess:
    case kDocumentation:
    case kLicense:
    case kReproducibility:
    case kPeerReview:
    case kDataQuality: return 15;
    default: return 0;
  }
}

std::optional<Facts> ExtractFacts(const json& md, std::string* error) {
  if (!md.is_object()) {
    *error = "metadata: must be a JSON object";
    return std::nullopt;
  }
  Facts f;
  Reader r{md, error};
  const json* name = Get(md, "Name");
  if (name == nullptr) {
    *error = "field \"Name\": missing";
    return std::nullopt;
  }
  if (!name->is_string()) {
    *error = "field \"Name\": must be a string";
    return std::nullopt;
  }
  const std::string raw_name = name->get<std::string>();
  f.name = Trim(raw_name);
  f.name_had_outer_space = f.name != raw_name;
  if (f.name.empty()) {
    *error = "field \"Name\": is empty";
    return std::nullopt;
  }
  if (Utf8Length(f.name) > kMaxNameChars) {
    *error = "field \"Name\": longer than " + std::to_string(kMaxNameChars) + " characters";
    return std::nullopt;
  }
  r.Year("Year", &f.year);
  r.Str("Language", &f.language);
  r.Str("Dialect", &f.dialect);
  r.Str("Form", &f.form);
  r.Str("Script", &f.script);
  r.Str("License", &f.license);
  r.Str("Link", &f.link);
  r.Str("HF Link", &f.hf_link);
  r.Str("Paper Link", &f.paper_link);
  r.Str("Host", &f.host);
  r.Str("Access", &f.access);
  r.Str("Description", &f.description);
  r.Number("Volume", &f.volume);
  r.Str("Unit", &f.unit);
  r.List("Tasks", &f.tasks);
  r.List("Source", &f.sources);
  r.List("Domain", &f.domains);
  r.List("Annotation Style", &f.annotation);
  r.List("Provider", &f.providers);
  r.List("Derived From", &f.derived_from);
  r.Str("Paper Title", &f.paper_title);
  r.Str("Venue Title", &f.venue_title);
  r.Str("Venue Type", &f.venue_type);
  r.Str("Venue Name", &f.venue_name);
  r.Bool("Tokenized", &f.tokenized);
  r.Bool("Has Splits", &f.has_splits);
  r.Bool("Partial", &f.partial);
  r.Str("Ethical Risks", &f.ethical_risks);
  if (const json* cost = Get(md, "Cost")) {  // "1,750.00 $", sometimes a number
    if (cost->is_string()) f.cost = Trim(cost->get<std::string>());
    else if (cost->is_number()) f.cost = FormatNumber(cost->get<double>());
    else r.Fail("Cost", "must be a string");
  }
  if (const json* subsets = Get(md, "Dialect Subsets")) {
    if (!subsets->is_array()) r.Fail("Dialect Subsets", "must be a list");
    else f.dialect_subsets = subsets->size();
  }
  if (!r.ok) return std::nullopt;
  return f;
}

LicenseClass ClassifyLicense(const std::string& license) {
  const std::string l = Lower(Trim(license));
  if (l.empty() || l == "unknown") return LicenseClass::kUnknown;
  if (l == "custom") return LicenseClass::kCustom;
  // Whole-word matching on the letters and digits ("MIT" is not "permitted").
  std::set<std::string> tokens;
  std::string token;
  for (char c : l + " ") {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      token += c;
    } else if (!token.empty()) {
      tokens.insert(token);
      token.clear();
    }
  }
  auto has = [&](const char* t) { return tokens.count(t) > 0; };
  if (has("ldc") || has("elra") || Contains(l, "user agreement") || Contains(l, "end user"))
    return LicenseClass::kAgreement;
  if (has("cc0") || has("pddl") || Contains(l, "public domain")) return LicenseClass::kPermissive;
  if ((has("cc") && has("by")) || Contains(l, "creative commons")) {
    const bool nc = has("nc") || has("noncommercial");
    const bool nd = has("nd") || has("noderivatives") || has("noderivs");
    const bool sa = has("sa") || has("sharealike");
    if (nc && nd) return LicenseClass::kNonCommercialNoDerivatives;
    if (nc) return LicenseClass::kNonCommercial;
    if (nd) return LicenseClass::kOpenRestricted;
    if (sa) return LicenseClass::kCopyleft;
    return LicenseClass::kPermissive;
  }
  if (has("rail") || has("openrail")) return LicenseClass::kOpenRestricted;
  if (has("gpl") || has("lgpl") || has("agpl") || has("mpl") || has("odbl") || has("epl") ||
      (has("cdla") && has("sharing")))
    return LicenseClass::kCopyleft;
  if (has("mit") || has("apache") || has("bsd") || (has("odc") && has("by")) ||
      (has("cdla") && has("permissive")) || has("afl") || has("dbcl") || has("isc") ||
      has("unlicense") || has("zlib"))
    return LicenseClass::kPermissive;
  if (has("noncommercial") || Contains(l, "non commercial") || Contains(l, "non-commercial"))
    return LicenseClass::kNonCommercial;
  return LicenseClass::kUnrecognized;
}

int LicenseScore(LicenseClass c) {
  switch (c) {
    case LicenseClass::kPermissive: return 100;
    case LicenseClass::kCopyleft: return 90;
    case LicenseClass::kOpenRestricted: return 70;
    case LicenseClass::kNonCommercial: return 65;
    case LicenseClass::kNonCommercialNoDerivatives: return 55;
    case LicenseClass::kAgreement: return 40;
    case LicenseClass::kCustom: return 30;
    case LicenseClass::kUnrecognized: return 30;
    case LicenseClass::kUnknown: return 0;
  }
  return 0;
}

CriterionResult ScoreLicense(const Facts& f) {
  CriterionResult r;
  const LicenseClass c = ClassifyLicense(f.license);
  r.score = LicenseScore(c);
  const std::string lic = Clip(f.license, 60);
  switch (c) {
    case LicenseClass::kPermissive:
      Good(&r, Guarded("ترخيصها مفتوح ومتساهل (" + lic +
                           ") يتيح إعادة الاستخدام والتعديل بما في ذلك الاستخدام التجاري",
                       "ترخيصها مفتوح ومتساهل يتيح إعادة الاستخدام والتعديل بما في ذلك "
                       "الاستخدام التجاري"));
      break;
    case LicenseClass::kCopyleft:
      Good(&r, Guarded("ترخيصها مفتوح (" + lic +
                           ") يتيح إعادة الاستخدام والتعديل بشرط نشر الأعمال المشتقة بالترخيص "
                           "نفسه",
                       "ترخيصها مفتوح يتيح إعادة الاستخدام والتعديل بشرط نشر الأعمال المشتقة "
                       "بالترخيص نفسه"));
      break;
    case LicenseClass::kOpenRestricted:
      Good(&r, Guarded("ترخيصها معروف ومتاح للعموم (" + lic + ")",
                       "ترخيصها معروف ومتاح للعموم"));
      Bad(&r, "يفرض ترخيصها قيودًا على أوجه الاستخدام أو على نشر النسخ المعدلة");
      break;
    case LicenseClass::kNonCommercial:
      Good(&r, Guarded("ترخيصها معروف (" + lic + ") ويسمح بالاستخدام البحثي",
                       "ترخيصها معروف ويسمح بالاستخدام البحثي"));
      Bad(&r, "يمنع ترخيصها الاستخدام التجاري");
      break;
    case LicenseClass::kNonCommercialNoDerivatives:
      Good(&r, Guarded("ترخيصها معروف (" + lic + ") ويسمح بالاستخدام البحثي",
                       "ترخيصها معروف ويسمح بالاستخدام البحثي"));
      Bad(&r, "يمنع ترخيصها الاستخدام التجاري ونشر النسخ المعدلة من البيانات");
      break;
    case LicenseClass::kAgreement:
      Bad(&r, Guarded("ترخيصها اتفاقية استخدام مقيدة (" + lic +
                          ") تمنع إعادة التوزيع وتشترط التعاقد مع الجهة الموزعة",
                      "ترخيصها اتفاقية استخدام مقيدة تمنع إعادة التوزيع وتشترط التعاقد مع "
                      "الجهة الموزعة"));
      break;
    case LicenseClass::kCustom:
      Bad(&r, "ترخيصها مخصص وغير قياسي، ويجب قراءة شروطه بعناية قبل أي استخدام");
      break;
    case LicenseClass::kUnrecognized:
      Bad(&r, Guarded("ترخيصها المذكور (" + lic + ") ليس من التراخيص القياسية المعروفة",
                      "ترخيصها المذكور ليس من التراخيص القياسية المعروفة"));
      break;
    case LicenseClass::kUnknown:
      Bad(&r, "ترخيصها غير معروف، فلا يمكن الجزم بشروط إعادة الاستخدام أو التوزيع");
      break;
  }
  return Clamp(r);
}

CriterionResult ScoreAccess(const Facts& f) {
  CriterionResult r;
  const std::string a = Lower(f.access);
  if (a == "free") {
    r.score += 50;
    Good(&r, "الوصول إلى البيانات مجاني ومتاح للجميع");
  } else if (a == "upon-request") {
    r.score += 20;
    Bad(&r, "لا يُتاح الوصول إلى البيانات إلا بطلب يوافق عليه مالكوها");
  } else if (a == "with-fee") {
    r.score += 10;
    if (!f.cost.empty() && f.cost != "0")
      Bad(&r, Guarded("الوصول إلى البيانات مدفوع، والتكلفة المعلنة " + Clip(f.cost, 40),
                      "الوصول إلى البيانات مدفوع"));
    else
      Bad(&r, "الوصول إلى البيانات مدفوع");
  } else {
    Bad(&r, "طريقة الوصول إلى البيانات غير موثقة");
  }
  const bool hf = IsHttpUrl(f.hf_link);
  const bool link = IsHttpUrl(f.link);
  if (hf) {
    r.score += 30;
    Good(&r, "متاحة على منصة Hugging Face ويمكن تحميلها بالأدوات القياسية");
  }
  if (link) r.score += 20;
  if (!hf && !link) Bad(&r, "لا يتوفر رابط عام صالح للوصول إلى البيانات");
  return Clamp(r);
}

CriterionResult ScoreDocumentation(const Facts& f) {
  CriterionResult r;
  const size_t words = WordCount(f.description);
  if (words >= 30) {
    r.score += 25;
    Good(&r, "وصفها في البيانات الوصفية مفصل نسبيًا");
  } else if (words >= 15) {
    r.score += 15;
  } else if (words >= 1) {
    r.score += 5;
    Bad(&r, "وصفها مقتضب ولا يكفي لفهم طريقة جمعها ومحتواها");
  } else {
    Bad(&r, "لا يتوفر وصف لمحتوى البيانات");
  }
  if (!f.tasks.empty()) r.score += 15;
  else Bad(&r, "المهام المستهدفة غير محددة");
  if (!f.dialect.empty()) r.score += 10;
  else Bad(&r, "اللهجة أو نوع العربية غير محدد");
  if (f.volume.value_or(0) > 0 && !f.unit.empty()) {
    r.score += 15;
    Good(&r, "حجمها موثق مع وحدة القياس");
  } else {
    Bad(&r, "حجم البيانات أو وحدة قياسه غير موثق");
  }
  if (f.tokenized.has_value()) r.score += 5;
  if (f.has_splits.has_value()) r.score += 5;
  if (f.has_splits.value_or(false)) r.score += 5;
  if (!f.domains.empty() || !f.sources.empty()) r.score += 10;
  else Bad(&r, "مصادر البيانات ومجالاتها غير موثقة");
  bool annotation = false;
  for (const auto& a : f.annotation)
    if (Lower(a) != "other") annotation = true;
  if (annotation) r.score += 10;
  else Bad(&r, "طريقة توسيم البيانات غير موثقة");
  return Clamp(r);
}

CriterionResult ScorePeerReview(const Facts& f) {
  CriterionResult r;
  const bool link = IsHttpUrl(f.paper_link);
  const bool title = !f.paper_title.empty();
  if (!link && !title) {
    Bad(&r, "لا توجد ورقة علمية مرافقة توثق طريقة بناء البيانات");
    return r;
  }
  if (link) r.score += 30;
  else Bad(&r, "لا يتوفر رابط للورقة العلمية المرافقة");
  if (title) r.score += 15;
  const std::string type = Lower(f.venue_type);
  const std::string venue = !f.venue_name.empty() ? f.venue_name : f.venue_title;
  const std::string where = VenueTypeNoun(type);
  auto cite = [&](const std::string& lead) {
    std::string plain = lead + " " + where;
    if (venue.empty() || Utf8Length(venue) > 40) return plain;
    return Guarded(plain + " (" + venue + ")", plain);
  };
  if (type == "conference" || type == "journal") {
    r.score += 40;
    Good(&r, cite("موثقة في ورقة علمية منشورة في"));
  } else if (type == "workshop") {
    r.score += 30;
    Good(&r, cite("موثقة في ورقة علمية منشورة في"));
  } else if (type == "preprint") {
    r.score += 15;
    Good(&r, "موثقة في ورقة علمية متاحة للعموم");
    Bad(&r, "الورقة المرافقة نسخة أولية لم تخضع للتحكيم العلمي");
  } else if (type == "other") {
    r.score += 10;
    Bad(&r, "الورقة المرافقة لم تُنشر في مؤتمر أو مجلة علمية محكمة");
  } else {
    Bad(&r, "جهة نشر الورقة المرافقة غير موثقة");
  }
  if (!f.venue_name.empty()) r.score += 15;
  return Clamp(r);
}

CriterionResult ScoreEthics(const Facts& f) {
  CriterionResult r;
  const std::string risks = Lower(f.ethical_risks);
  if (risks.empty()) {
    r.score = 50;
    Bad(&r, "لا تتضمن البيانات الوصفية تقييمًا صريحًا للمخاطر الأخلاقية");
  } else if (risks == "low") {
    r.score = 90;
    Good(&r, "مخاطرها الأخلاقية موثقة ومصنفة منخفضة");
  } else if (risks == "medium") {
    r.score = 60;
    Bad(&r, "مخاطرها الأخلاقية موثقة ومصنفة متوسطة");
  } else if (risks == "high") {
    r.score = 30;
    Bad(&r, "مخاطرها الأخلاقية موثقة ومصنفة مرتفعة");
  } else {
    r.score = 50;
  }
  if (Has(f.sources, "social media")) {
    r.score -= 15;
    Bad(&r, "مصدرها وسائل التواصل الاجتماعي، فقد تتضمن بيانات شخصية أو محتوى مسيئًا");
  }
  const std::string form = Lower(f.form);
  if (form == "audio" || form == "videos") {
    r.score -= 10;
    Bad(&r, "تتضمن أصوات أشخاص أو صورهم، وهي بيانات حيوية تستلزم موافقة أصحابها وحمايتها");
  }
  if (Has(f.sources, "telephone conversations")) {
    r.score -= 5;
    Bad(&r, "مصدرها محادثات هاتفية خاصة قد تتضمن معلومات شخصية");
  }
  for (const char* t : {"speaker identification", "gender identification", "author profiling",
                        "mental health detection", "disease identification"}) {
    if (Has(f.tasks, t)) {
      r.score -= 10;
      Bad(&r, "تستهدف مهامها تحديد هوية الأشخاص أو خصائصهم الشخصية، مما يستلزم حماية الخصوصية");
      break;
    }
  }
  for (const char* t : {"offensive language detection", "hate speech detection",
                        "misogyny identification", "troll detection", "safety evaluation"}) {
    if (Has(f.tasks, t)) {
      r.score -= 5;
      Bad(&r, "تحتوي بحكم مهمتها على محتوى مسيء أو ضار ينبغي التعامل معه بحذر");
      break;
    }
  }
  if (!f.sources.empty() &&
      std::all_of(f.sources.begin(), f.sources.end(), IsLowRiskSource)) {
    r.score += 10;
    Good(&r, "مصادرها منشورة أو محررة أصلًا، لا وسائل تواصل اجتماعي ولا محادثات خاصة، فمخاطر "
             "الخصوصية فيها محدودة");
  }
  return Clamp(r);
}

CriterionResult ScoreReproducibility(const Facts& f) {
  CriterionResult r;
  const std::string host = Clip(f.host, 30);
  if (IsStableHost(f.host)) {
    r.score += 35;
    Good(&r, Guarded("مستضافة على منصة " + host + " التي تحفظ الإصدارات وتسهل الرجوع إليها",
                     "مستضافة على منصة معروفة تحفظ الإصدارات وتسهل الرجوع إليها"));
  } else if (IsCatalogueHost(f.host)) {
    r.score += 30;
    Good(&r, Guarded("موزعة عبر فهرس " + host + " الذي يحفظ إصدارات ثابتة منها",
                     "موزعة عبر فهرس معروف يحفظ إصدارات ثابتة منها"));
  } else if (!f.host.empty()) {
    r.score += 10;
    Bad(&r, "مستضافة على خدمة تخزين عامة أو موقع غير مؤرشف، وقد يتغير رابطها أو يختفي");
  } else {
    Bad(&r, "جهة استضافة البيانات غير موثقة");
  }
  if (IsHttpUrl(f.link)) r.score += 20;
  if (IsHttpUrl(f.hf_link)) r.score += 15;
  const std::string a = Lower(f.access);
  if (a == "free") r.score += 20;
  else if (a == "with-fee") r.score += 10;
  else if (a == "upon-request") r.score += 5;
  if (f.has_splits.value_or(false)) {
    r.score += 10;
    Good(&r, "تتضمن تقسيمات جاهزة للتدريب والاختبار تتيح مقارنة النتائج");
  } else if (f.has_splits.has_value()) {
    Bad(&r, "لا تتضمن تقسيمات رسمية للتدريب والاختبار، مما يصعب مقارنة النتائج بين الدراسات");
  }
  if (f.partial.value_or(false)) {
    r.score -= 10;
    Bad(&r, "لم يُنشر منها إلا جزء بحسب البيانات الوصفية");
  }
  return Clamp(r);
}

CriterionResult ScoreDataQuality(const Facts& f) {
  CriterionResult r;
  const double v = f.volume.value_or(0);
  const std::string unit = Lower(f.unit);
  double big = -1, medium = -1;
  if (unit == "tokens") big = 1e6, medium = 1e5;
  else if (unit == "sentences" || unit == "documents" || unit == "images") big = 1e4, medium = 1e3;
  else if (unit == "conversations" || unit == "videos") big = 1e3, medium = 100;
  else if (unit == "hours") big = 100, medium = 10;
  if (v <= 0) {
    Bad(&r, "حجمها غير معروف");
  } else if (big < 0) {
    r.score += 5;
  } else if (v >= big) {
    r.score += 25;
    Good(&r, "حجمها كبير نسبيًا مقارنة بمجموعات البيانات المماثلة");
  } else if (v >= medium) {
    r.score += 15;
  } else {
    r.score += 5;
    Bad(&r, "حجمها صغير نسبيًا، مما يحد من فائدتها في تدريب النماذج");
  }
  int annotation = 0;
  bool automatic_only = !f.annotation.empty();
  for (const auto& raw : f.annotation) {
    const std::string a = Lower(raw);
    int points = 5;
    if (a == "human annotation") points = 30;
    else if (a == "human validation") points = 25;
    else if (a == "inherited annotation" || a == "metadata-derived") points = 15;
    else if (a == "none" || a == "machine annotation" || a == "llm annotation") points = 10;
    if (a != "machine annotation" && a != "llm annotation") automatic_only = false;
    annotation = std::max(annotation, points);
  }
  r.score += annotation;
  if (annotation >= 25) Good(&r, "وسمها بشري أو خضع لمراجعة بشرية");
  if (automatic_only)
    Bad(&r, "وسمها آلي أو مولَّد بنماذج لغوية دون مراجعة بشرية موثقة");
  if (!f.providers.empty()) {
    r.score += 15;
    Good(&r, "الجهة المنتجة لها معروفة");
  } else {
    Bad(&r, "الجهة المنتجة للبيانات غير موثقة");
  }
  if (!f.derived_from.empty() || !f.sources.empty()) r.score += 10;
  const bool curated = std::any_of(f.sources.begin(), f.sources.end(), IsCuratedSource);
  const bool llm = Has(f.sources, "llm");
  if (curated) r.score += 20;
  else if (!f.sources.empty() && !(llm && f.sources.size() == 1)) r.score += 10;
  else if (llm) r.score += 5;
  if (llm) {
    r.score -= 10;
    Bad(&r, "جزء من محتواها مولد بنماذج لغوية، فقد يتضمن أخطاء أو تحيزات غير مراجعة");
  }
  // The data itself was not examined: the metadata can earn at most 80.
  return Clamp(r, 80);
}

Scores ScoreAll(const Facts& f) {
  Scores s;
  s.criteria[kAccess] = ScoreAccess(f);
  s.criteria[kDocumentation] = ScoreDocumentation(f);
  s.criteria[kEthics] = ScoreEthics(f);
  s.criteria[kLicense] = ScoreLicense(f);
  s.criteria[kReproducibility] = ScoreReproducibility(f);
  s.criteria[kPeerReview] = ScorePeerReview(f);
  s.criteria[kDataQuality] = ScoreDataQuality(f);
  std::array<int, kCriterionCount> scores{};
  for (int i = 0; i < kCriterionCount; ++i) scores[i] = s.criteria[i].score;
  s.overall = WeightedMean(scores);
  s.grade = GradeFor(s.overall);
  return s;
}

int WeightedMean(const std::array<int, kCriterionCount>& scores) {
  int sum = 0;
  for (int i = 0; i < kCriterionCount; ++i)
    sum += CriterionWeight(static_cast<Criterion>(i)) * std::clamp(scores[i], 0, 100);
  return (sum + 50) / 100;
}

// ------------------------------------------------------------- the text

namespace {

std::vector<std::string> KnownTasks(const Facts& f, bool* has_unknown) {
  std::vector<std::string> out;
  *has_unknown = false;
  for (const auto& t : f.tasks) {
    auto it = TaskNames().find(Lower(t));
    if (it == TaskNames().end()) {
      *has_unknown = true;
      continue;
    }
    if (std::find(out.begin(), out.end(), it->second) == out.end()) out.push_back(it->second);
  }
  return out;
}

std::string Summary(const Facts& f, const Scores& s, bool with_name) {
  std::string out = "تقييم آلي مبني على البيانات الوصفية وحدها لمجموعة البيانات ";
  out += with_name ? "«" + f.name + "»" : "المذكورة";
  out += "، وهي " + FormPhrase(f.form);
  if (const std::string d = DialectNoun(f.dialect); !d.empty()) out += " ب" + d;
  if (Lower(f.language) == "multilingual") out += " ضمن محتوى متعدد اللغات";
  if (f.year) out += " صدرت عام " + std::to_string(*f.year);
  if (f.volume.value_or(0) > 0) out += "، ويبلغ حجمها المعلن " + Quantity(*f.volume, f.unit);
  bool unknown = false;
  std::vector<std::string> tasks = KnownTasks(f, &unknown);
  if (tasks.size() > 4) {
    tasks.resize(4);
    unknown = true;
  }
  if (!tasks.empty()) {
    out += (tasks.size() == 1 && !unknown ? "، ومخصصة لمهمة " : "، ومخصصة لمهام ") +
           JoinArabic(tasks);
    if (unknown) out += " ومهام أخرى";
  } else if (unknown) {
    out += "، ومخصصة لمهام أخرى غير مصنفة";
  }
  out += ". حصلت على درجة " + std::to_string(s.overall) + " من 100 بتقدير «" + s.grade + "»";
  int best = 0, worst = 0;
  for (int i = 1; i < kCriterionCount; ++i) {
    if (s.criteria[i].score > s.criteria[best].score) best = i;
    if (s.criteria[i].score < s.criteria[worst].score) worst = i;
  }
  if (s.criteria[best].score != s.criteria[worst].score) {
    out += "، وأقوى معاييرها " + std::string(CriterionLabel(static_cast<Criterion>(best))) +
           " (" + std::to_string(s.criteria[best].score) + ") وأضعفها " +
           CriterionLabel(static_cast<Criterion>(worst)) + " (" +
           std::to_string(s.criteria[worst].score) + ")";
  }
  out += ". لم تُحمَّل البيانات ولم تُفحص أي عينة منها، لذا يقيس هذا التقييم جودة التوثيق والإتاحة "
         "والترخيص لا محتوى البيانات نفسه.";
  return out;
}

std::vector<std::string> Uses(const Facts& f) {
  std::vector<std::string> out;
  bool unknown = false;
  std::vector<std::string> tasks = KnownTasks(f, &unknown);
  if (tasks.size() > 5) tasks.resize(5);
  for (const auto& t : tasks) out.push_back("تدريب النماذج وتقييمها في مهمة " + t);
  if (f.has_splits.value_or(false))
    out.push_back("المقارنة المعيارية بين النماذج باستخدام التقسيمات الرسمية للبيانات");
  if (const std::string d = DialectNoun(f.dialect);
      !d.empty() && Lower(f.dialect) != "modern standard arabic")
    out.push_back("دراسة " + d + " ومعالجتها آليًا");
  switch (ClassifyLicense(f.license)) {
    case LicenseClass::kNonCommercial:
    case LicenseClass::kNonCommercialNoDerivatives:
      out.push_back("البحث الأكاديمي غير التجاري فقط، التزامًا بشروط الترخيص");
      break;
    case LicenseClass::kAgreement:
      out.push_back("البحث لدى الجهات المتعاقدة مع الجهة الموزعة وفق اتفاقية الاستخدام");
      break;
    case LicenseClass::kUnknown:
    case LicenseClass::kCustom:
    case LicenseClass::kUnrecognized:
      out.push_back("الاستكشاف البحثي بعد التحقق من شروط الاستخدام مع الجهة المالكة");
      break;
    default:
      break;
  }
  if (out.empty()) out.push_back("الاستكشاف الأولي للموارد العربية المتاحة في مجالها");
  return out;
}

// Problems of the metadata itself (the only thing examined).
std::vector<std::string> MetadataProblems(const Facts& f) {
  std::vector<std::string> out;
  if (f.name_had_outer_space)
    out.push_back("اسم مجموعة البيانات في البيانات الوصفية يتضمن مسافات زائدة في بدايته أو نهايته");
  if (ClassifyLicense(f.license) == LicenseClass::kUnknown)
    out.push_back("الترخيص غير محدد في البيانات الوصفية");
  if (!f.link.empty() && !IsHttpUrl(f.link))
    out.push_back("رابط البيانات ليس رابط ويب صالحًا: " + Clip(f.link, 200));
  if (!f.hf_link.empty() && !IsHttpUrl(f.hf_link))
    out.push_back("رابط منصة Hugging Face ليس رابط ويب صالحًا: " + Clip(f.hf_link, 200));
  if (!f.paper_link.empty() && !IsHttpUrl(f.paper_link))
    out.push_back("رابط الورقة العلمية ليس رابط ويب صالحًا: " + Clip(f.paper_link, 200));
  if (f.volume.has_value() && *f.volume <= 0) out.push_back("الحجم المعلن للبيانات صفر");
  if (!f.volume.has_value()) out.push_back("الحجم المعلن للبيانات غير موجود");
  if (f.volume.value_or(0) > 0 && UnitNouns(f.unit).first.empty())
    out.push_back("وحدة قياس الحجم غير معروفة أو غير موجودة");
  if (!f.paper_title.empty() && f.paper_link.empty())
    out.push_back("عنوان الورقة العلمية مذكور دون رابط لها");
  if (!f.year) out.push_back("سنة الإصدار غير موجودة");
  if (f.description.empty()) out.push_back("الوصف غير موجود");
  return out;
}

void AddUnique(std::vector<std::string>* list, const std::string& s) {
  if (std::find(list->begin(), list->end(), s) == list->end()) list->push_back(s);
}

}  // namespace

ojson BuildAssessment(const Facts& f, const Scores& s) {
  std::string summary = Summary(f, s, /*with_name=*/true);
  if (ArabicShare(summary) < 0.6) summary = Summary(f, s, /*with_name=*/false);

  std::vector<std::string> strengths, weaknesses;
  // The caveat every metadata-only assessment carries comes first.
  weaknesses.push_back(
      "لم تُفحص البيانات نفسها، فالحكم على جودتها مبني على البيانات الوصفية وحدها");
  for (int i : {kLicense, kAccess, kDocumentation, kPeerReview, kEthics, kReproducibility,
                kDataQuality})
    for (const Note& n : s.criteria[i].notes) AddUnique(n.positive ? &strengths : &weaknesses,
                                                        n.text);
  if (strengths.empty())
    strengths.push_back("مدرجة في فهرس للموارد اللغوية العربية مع بيانات وصفية أساسية");
  if (strengths.size() > 20) strengths.resize(20);
  if (weaknesses.size() > 20) weaknesses.resize(20);

  std::vector<std::string> sources;
  for (const std::string* link : {&f.link, &f.hf_link, &f.paper_link})
    if (IsHttpUrl(*link) && link->size() <= 2048) AddUnique(&sources, *link);

  ojson breakdown = ojson::object();
  for (int i = 0; i < kCriterionCount; ++i)
    breakdown[CriterionKey(static_cast<Criterion>(i))] = s.criteria[i].score;

  ojson out = ojson::object();
  out["الاسم"] = f.name;
  out["الاسم_الأصلي"] = f.name;
  out["درجة_الجودة"] = s.overall;
  out["تقدير_الجودة"] = s.grade;
  out["الملخص"] = summary;
  out["فحص_البيانات"] = {
      {"الطريقة_المستخدمة", "metadata_only"},
      {"عدد_العينات_المفحوصة", 0},
      {"معاينة_العينات", ojson::array()},
      {"مشاكل_مكتشفة", MetadataProblems(f)},
      // Nothing was inspected, so nothing is confirmed (not a claim of mismatch).
      {"البيانات_تطابق_الوصف", false},
  };
  out["نقاط_القوة"] = strengths;
  out["نقاط_الضعف"] = weaknesses;
  out["الاستخدامات_الموصى_بها"] = Uses(f);
  out["تفصيل_الجودة"] = breakdown;
  out["المصادر_المفتوحة"] = sources;
  out["تم_تحميل_البيانات"] = false;
  return out;
}

std::optional<ojson> AssessMetadata(const json& metadata, std::string* error) {
  std::optional<Facts> facts = ExtractFacts(metadata, error);
  if (!facts) return std::nullopt;
  return BuildAssessment(*facts, ScoreAll(*facts));
}

std::optional<ojson> AssessMetadataText(const std::string& text, std::string* error) {
  if (text.size() > kMaxInputBytes) {
    *error = "metadata: larger than " + std::to_string(kMaxInputBytes) + " bytes";
    return std::nullopt;
  }
  if (JsonDepth(text, kMaxInputDepth) > kMaxInputDepth) {
    *error = "metadata: nested deeper than " + std::to_string(kMaxInputDepth) + " levels";
    return std::nullopt;
  }
  json md;
  try {
    md = json::parse(text);
  } catch (const json::parse_error& e) {
    *error = "metadata: invalid JSON at byte " + std::to_string(e.byte);
    return std::nullopt;
  }
  return AssessMetadata(md, error);
}

}  // namespace assessq::offline
