//! Reply trimming: only the NEW text of an emailed reply becomes the comment.
//!
//! Mail clients append (or prepend) the whole conversation to a reply, with an
//! attribution line ("On … wrote:"), an Outlook header block, a signature and
//! a "Sent from my iPhone" footer. A ticket comment that repeats the thread
//! each time is useless, so ingest keeps only what the customer just wrote;
//! the untrimmed text stays in the raw message, which is why trimming may be
//! aggressive. It never returns nothing, though: when every line looks like
//! history, the whole text is kept, because losing a message is worse than
//! showing a quote.
//!
//! The plain-text trimmer classifies each line (empty, text, quote, marker,
//! header, delimiter, mobile footer), then applies a few positional rules to
//! that sequence (the approach of Discourse's email_reply_trimmer, written
//! anew). HTML bodies first lose the quote containers the big clients mark
//! (Gmail, Outlook, Thunderbird, Apple Mail…), are converted to text
//! (`<blockquote>` becomes `>` lines) and then go through the same rules.
//!
//! Everything here is pure, linear in the input size and panic-free: bodies
//! are untrusted and can be megabytes long.

/// Returns the new text of a plain-text reply: quoted history, attribution
/// lines, Outlook header blocks, delimiters with what follows, signatures and
/// mobile footers are cut. Line endings become LF, leading blank lines and
/// trailing white space are removed. When nothing would remain, the whole
/// (normalised) text is returned instead.
pub fn trim_reply(text: &str) -> String {
    let normalized = normalize_newlines(text);
    let lines: Vec<&str> = normalized.split('\n').collect();
    let kinds = classify(&lines);
    let kept = select_reply(&lines, &kinds);
    let reply = join_trimmed(&kept);
    if reply.is_empty() {
        join_trimmed(&lines)
    } else {
        reply
    }
}

/// Returns the new text of an HTML reply as plain text. Known quote
/// containers are removed first (they are reliable where present, unlike any
/// text heuristic), the rest is converted to text and trimmed like a
/// plain-text reply.
pub fn trim_html_reply(html: &str) -> String {
    trim_reply(&html_to_text(html))
}

// ---------------------------------------------------------------------------
// Line classification
// ---------------------------------------------------------------------------

/// What a line of a reply is, as far as trimming is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Blank (white space only).
    Empty,
    /// Anything else: presumably written by the sender.
    Text,
    /// `> quoted` (also `Name>` as some old clients write it).
    Quote,
    /// Start of embedded history: "On … wrote:", "-----Original Message-----".
    Marker,
    /// A line of an Outlook-style `From:/Sent:/To:/Subject:` block (only
    /// blocks of at least three such lines keep this kind).
    Header,
    /// A line of dashes, underscores…: signatures and history follow it.
    Delimiter,
    /// A mobile or webmail footer ("Sent from my iPhone").
    Footer,
}

/// CRLF, CR+CRLF and lone CR all become LF: replies come from every platform
/// and the rules below work on LF-separated lines.
fn normalize_newlines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            while chars.peek() == Some(&'\r') {
                chars.next();
            }
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

/// Joins the lines with LF, without the leading blank lines and the trailing
/// white space (the first line's indentation is kept: it may be code).
fn join_trimmed(lines: &[&str]) -> String {
    let start = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    let mut out = lines[start..].join("\n");
    out.truncate(out.trim_end().len());
    out
}

/// Indices of the lines that open or close a fenced code block, paired: an
/// unclosed fence is ignored, so a stray ``` cannot switch trimming off.
fn code_lines(lines: &[&str]) -> Vec<bool> {
    let mut in_code = vec![false; lines.len()];
    let fences: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("```"))
        .map(|(i, _)| i)
        .collect();
    for pair in fences.chunks_exact(2) {
        for flag in &mut in_code[pair[0]..=pair[1]] {
            *flag = true;
        }
    }
    in_code
}

fn classify(lines: &[&str]) -> Vec<Kind> {
    let n = lines.len();
    let in_code = code_lines(lines);
    let mut kinds = vec![Kind::Text; n];
    let mut i = 0;
    while i < n {
        let line = lines[i];
        let t = line.trim();
        if in_code[i] {
            // Code is the sender's own text, whatever it looks like.
        } else if t.is_empty() {
            kinds[i] = Kind::Empty;
        } else if is_quote_line(line) {
            kinds[i] = Kind::Quote;
        } else if let Some(end) = marker_end(lines, i) {
            for kind in &mut kinds[i..=end] {
                *kind = Kind::Marker;
            }
            i = end + 1;
            continue;
        } else if is_mobile_footer(t) {
            kinds[i] = Kind::Footer;
        } else if is_delimiter(t) && !is_setext_underline(t, i, &kinds) {
            kinds[i] = Kind::Delimiter;
        } else if header_key(t).is_some() {
            kinds[i] = Kind::Header;
        }
        i += 1;
    }
    confirm_header_blocks(&mut kinds);
    mark_attribution_before_quote(lines, &mut kinds);
    kinds
}

/// `> text`, and `Name> text` / `C>` as written by some old clients.
fn is_quote_line(line: &str) -> bool {
    let s = line.trim_start();
    if s.starts_with('>') {
        return true;
    }
    let letters = s.chars().take_while(char::is_ascii_alphabetic).count();
    (1..=10).contains(&letters) && s[letters..].starts_with('>')
}

/// A line made of separator characters only (`--`, `-- `, `____`, `***`,
/// Gmail's `ᐧ`…). What follows is a signature or the previous message.
fn is_delimiter(t: &str) -> bool {
    if t == "ᐧ" {
        return true;
    }
    let mut count = 0;
    for c in t.chars() {
        if c.is_whitespace() {
            continue;
        }
        if !matches!(c, '-' | '_' | '=' | '*' | '#' | '~' | '+' | '—' | '–' | 'ᐧ') {
            return false;
        }
        count += 1;
    }
    count >= 2
}

/// `====` right under a line of text is a Markdown heading, not a separator.
fn is_setext_underline(t: &str, i: usize, kinds: &[Kind]) -> bool {
    i > 0 && kinds[i - 1] == Kind::Text && t.chars().all(|c| c == '=')
}

/// Words that end an attribution line, in the languages mail clients speak.
const ATTRIBUTION_VERBS: &[&str] = &[
    "wrote",
    "writes",
    "schrieb",
    "geschrieben",
    "écrit",
    "escribió",
    "escribio",
    "schreef",
    "geschreven",
    "scritto",
    "scrisse",
    "napisał",
    "napisal",
    "pisze",
    "escreveu",
    "написал",
    "написала",
    "написав",
    "пише",
    "писал",
    "skrev",
    "写道",
    "寫道",
    "kirjoitti",
    "írta",
    "yazdı",
    "napsal",
    "napísal",
    "a scris",
];

/// How attribution lines begin: "On …", "Am …", "Le …", "El …", "Op …",
/// "Il …", "Em …", "Den …", "Dnia …"…
const ATTRIBUTION_PREFIXES: &[&str] = &[
    "On ", "Am ", "Le ", "El ", "Op ", "Il ", "Em ", "Den ", "Dnia ", "W dniu ", "At ", "Dne ",
    "Pada ", "Vào ", "På ", "在", "於",
];

const WEEKDAYS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "понедельник",
    "вторник",
    "среда",
    "четверг",
    "пятница",
    "суббота",
    "воскресенье",
];

/// Separator lines that open forwarded or original messages (compared with
/// the surrounding punctuation removed, case-insensitively).
const SEPARATOR_PHRASES: &[&str] = &[
    "original message",
    "forwarded message",
    "begin forwarded message",
    "ursprüngliche nachricht",
    "originalnachricht",
    "weitergeleitete nachricht",
    "mensaje original",
    "mensaje reenviado",
    "message d'origine",
    "message original",
    "message transféré",
    "messaggio originale",
    "messaggio inoltrato",
    "mensagem original",
    "mensagem encaminhada",
    "oorspronkelijk bericht",
    "doorgestuurd bericht",
    "oryginalna wiadomość",
    "wiadomość oryginalna",
    "przekazana wiadomość",
    "wiadomość przekazana",
    "исходное сообщение",
    "пересылаемое сообщение",
    "пересланное сообщение",
    "вихідне повідомлення",
    "переслане повідомлення",
    "ursprungligt meddelande",
    "vidarebefordrat meddelande",
    "opprinnelig melding",
    "videresendt melding",
    "oprindelig meddelelse",
    "videresendt meddelelse",
    "alkuperäinen viesti",
    "原始邮件",
    "原始郵件",
    "转发的邮件",
];

fn starts_with_digit(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_digit())
}

fn strip_leading_decoration(t: &str) -> &str {
    t.trim_start_matches(|c: char| c == '-' || c == '*' || c == '_' || c.is_whitespace())
}

/// A line that begins like an attribution by its wording ("On …", a
/// weekday…), not merely by a digit.
fn has_attribution_prefix(t: &str) -> bool {
    let s = strip_leading_decoration(t);
    if ATTRIBUTION_PREFIXES.iter().any(|p| s.starts_with(p)) {
        return true;
    }
    let head: String = s.chars().take(12).collect::<String>().to_lowercase();
    WEEKDAYS.iter().any(|w| head.starts_with(w))
}

/// Whether `s` (one line, or several joined with spaces) is a whole
/// attribution line: it ends with `:` (or "wrote"), has an attribution verb
/// near its end, a date or an address, and begins like an attribution or
/// names an address. "Here is what support wrote:" does not qualify.
fn is_attribution(s: &str) -> bool {
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '-' || c == '*' || c == '_');
    let count = s.chars().count();
    if !(8..=300).contains(&count) {
        return false;
    }
    let lower = s.to_lowercase();
    let ends_ok = lower.ends_with(':')
        || lower.ends_with('：')
        || lower.ends_with("wrote")
        || lower.ends_with("writes");
    if !ends_ok {
        return false;
    }
    let tail_start = lower
        .char_indices()
        .rev()
        .nth(89)
        .map_or(0, |(index, _)| index);
    let tail = &lower[tail_start..];
    if !contains_attribution_verb(tail) {
        return false;
    }
    let has_at = s.contains('@');
    let has_digit = s.chars().any(|c| c.is_ascii_digit());
    has_at || (has_digit && (has_attribution_prefix(s) || starts_with_digit(s)))
}

/// A line that may begin an attribution wrapped over several lines: it
/// begins like one, or names an address and an attribution verb ("Name
/// <addr> schrieb am Fr., 28." / "Apr. 2017 um 11:53 Uhr:").
fn may_start_attribution(t: &str) -> bool {
    has_attribution_prefix(t)
        || starts_with_digit(strip_leading_decoration(t))
        || (t.contains('@') && contains_attribution_verb(&t.to_lowercase()))
}

fn contains_attribution_verb(lower: &str) -> bool {
    ATTRIBUTION_VERBS.iter().any(|v| lower.contains(v))
}

/// Inside a wrapped attribution, a line that clearly starts another one.
fn starts_new_attribution(t: &str) -> bool {
    has_attribution_prefix(t) || (t.contains('<') && is_attribution(t)) || is_separator_phrase(t)
}

fn is_separator_phrase(t: &str) -> bool {
    let core = t.trim_matches(|c: char| !c.is_alphanumeric());
    if core.is_empty() || core.len() > 60 {
        return false;
    }
    let lower = core.to_lowercase();
    SEPARATOR_PHRASES.contains(&lower.as_str())
}

/// A line starting with a numeric date (`2016-03-03`, `2013/7/20`,
/// `26.06.2014`).
fn starts_with_numeric_date(t: &str) -> bool {
    let b = t.as_bytes();
    let digits_at = |from: usize| {
        b[from.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let is_sep = |at: usize| matches!(b.get(at), Some(b'-' | b'/' | b'.'));
    let d1 = digits_at(0);
    if d1 == 0 || !is_sep(d1) {
        return false;
    }
    let d2 = digits_at(d1 + 1);
    if !(1..=2).contains(&d2) || !is_sep(d1 + 1 + d2) {
        return false;
    }
    let d3 = digits_at(d1 + 2 + d2);
    match d1 {
        4 => (1..=2).contains(&d3),
        1 | 2 => d3 == 2 || d3 == 4,
        _ => false,
    }
}

/// Gmail's older attribution: "2016-03-03 17:21 GMT+01:00 Some One" or
/// "2013/7/20 Name <address>", without any verb.
fn is_date_marker(t: &str) -> bool {
    if t.len() > 200 || !starts_with_numeric_date(t) {
        return false;
    }
    let shaped = t.contains("GMT") || t.ends_with('<') || t.ends_with('>') || t.ends_with(':');
    shaped && (t.contains("GMT") || t.contains('@') || t.contains('<'))
}

/// If a marker starts at line `i`, the index of its last line: attributions
/// wrap over up to five lines ("On …, Name <" / "addr> wrote:").
fn marker_end(lines: &[&str], i: usize) -> Option<usize> {
    let first = lines[i].trim();
    if is_separator_phrase(first) {
        return Some(i);
    }
    if is_attribution(first) {
        return Some(extend_marker(lines, i));
    }
    if may_start_attribution(first) && first.chars().count() <= 200 {
        let mut joined = first.to_string();
        let limit = (i + 5).min(lines.len());
        for (j, line) in lines.iter().enumerate().take(limit).skip(i + 1) {
            let t = line.trim();
            if t.chars().count() > 80 || starts_new_attribution(t) {
                break;
            }
            if !t.is_empty() {
                joined.push(' ');
                joined.push_str(t);
            }
            if is_attribution(&joined) {
                return Some(extend_marker(lines, j));
            }
        }
    }
    if is_date_marker(first) {
        return Some(extend_marker(lines, i));
    }
    None
}

/// Takes in the address a marker spills onto the next line: a line ending
/// with `<`, or a following `addr>:` / `>:`.
fn extend_marker(lines: &[&str], mut end: usize) -> usize {
    for _ in 0..3 {
        let current = lines[end].trim_end();
        let Some(next) = lines.get(end + 1).map(|l| l.trim()) else {
            break;
        };
        if next.is_empty() {
            break;
        }
        if current.ends_with('<') {
            end += 1;
            continue;
        }
        if next.chars().count() <= 60 && (next.ends_with(">:") || next == ">" || next == ":") {
            end += 1;
        }
        break;
    }
    end
}

/// Field names of the header blocks clients put above the previous message
/// (Outlook and most webmails), in the common languages.
const HEADER_KEYS: &[&str] = &[
    // English
    "from",
    "sent",
    "to",
    "subject",
    "date",
    "cc",
    "bcc",
    "reply-to",
    "reply to",
    // German
    "von",
    "gesendet",
    "an",
    "betreff",
    "datum",
    "kopie",
    // French
    "de",
    "envoyé",
    "à",
    "objet",
    "a",
    "répondre à",
    // Spanish, Portuguese
    "para",
    "asunto",
    "enviado",
    "fecha",
    "enviada",
    "assunto",
    "data",
    // Dutch
    "van",
    "verzonden",
    "aan",
    "onderwerp",
    "verstuurd",
    // Italian
    "da",
    "inviato",
    "oggetto",
    "risposta",
    // Polish
    "od",
    "wysłano",
    "do",
    "temat",
    "dw",
    // Russian, Ukrainian
    "от",
    "отправлено",
    "кому",
    "тема",
    "дата",
    "копия",
    "від",
    "надіслано",
    // Swedish, Norwegian, Danish
    "från",
    "skickat",
    "till",
    "ämne",
    "kopia",
    "fra",
    "sendt",
    "til",
    "emne",
    "dato",
    "kopi",
    // Chinese
    "发件人",
    "发送时间",
    "收件人",
    "主题",
    "抄送",
    "日期",
    "寄件者",
    "收件者",
    "主旨",
    "傳送時間",
];

/// The field name when `t` looks like `From: …` (also bold `*From:*`).
fn header_key(t: &str) -> Option<String> {
    let s = t.trim_start_matches(|c: char| c == '*' || c.is_whitespace());
    let colon = s.find([':', '：'])?;
    let key = s[..colon].trim_matches(|c: char| c == '*' || c.is_whitespace());
    if key.is_empty() || key.chars().count() > 25 {
        return None;
    }
    let lower = key.to_lowercase();
    HEADER_KEYS.contains(&lower.as_str()).then_some(lower)
}

/// Keeps `Header` only on blocks of at least three header lines (a value may
/// wrap onto one continuation line); lone `To: everyone` lines are text.
fn confirm_header_blocks(kinds: &mut [Kind]) {
    let n = kinds.len();
    let mut i = 0;
    while i < n {
        if kinds[i] != Kind::Header {
            i += 1;
            continue;
        }
        let start = i;
        let mut last = i;
        let mut count = 0;
        let mut j = i;
        while j < n {
            match kinds[j] {
                Kind::Header => {
                    count += 1;
                    last = j;
                }
                Kind::Text if j == last + 1 => {}
                _ => break,
            }
            j += 1;
        }
        for kind in &mut kinds[start..=last] {
            *kind = if count >= 3 { Kind::Header } else { Kind::Text };
        }
        i = last + 1;
    }
}

/// A line ending with `:` that names an address and a date, right above a
/// quote, is an attribution in any language (mail.ru: "Thu, 26 Jun 2014
/// 14:00:51 +0400 от Name <addr>:").
fn mark_attribution_before_quote(lines: &[&str], kinds: &mut [Kind]) {
    for i in 0..kinds.len().saturating_sub(1) {
        if kinds[i] != Kind::Text || kinds[i + 1] != Kind::Quote {
            continue;
        }
        let t = lines[i].trim();
        if t.len() <= 200
            && (t.ends_with(':') || t.ends_with('：'))
            && t.contains('@')
            && t.chars().any(|c| c.is_ascii_digit())
        {
            kinds[i] = Kind::Marker;
        }
    }
}

/// Device keywords that make "Sent from X" a footer rather than a sentence.
const DEVICE_WORDS: &[&str] = &[
    "iphone",
    "ipad",
    "ipod",
    "android",
    "mobile",
    "mobil",
    "phone",
    "cell",
    "blackberry",
    "galaxy",
    "samsung",
    "outlook",
    "mail",
    "windows",
    "device",
    "tablet",
    "airmail",
    "sparrow",
    "spark",
    "k-9",
    "huawei",
    "pixel",
    "nokia",
    "xiaomi",
    "handy",
    "telefon",
    "téléphone",
    "móvil",
    "movil",
    "smartphone",
    "yahoo",
    "aol",
    "proton",
];

/// Footer openings that are footers whatever follows ("… my …").
const FOOTER_PREFIXES: &[&str] = &[
    "sent from my ",
    "sent on my ",
    "sent via my ",
    "sent using my ",
    "envoyé de mon ",
    "envoyé depuis mon ",
    "von meinem ",
    "gesendet von meinem ",
    "diese nachricht wurde von meinem ",
    "enviado desde mi ",
    "enviado do meu ",
    "enviado de meu ",
    "enviado desde o meu ",
    "inviato dal mio ",
    "verzonden vanaf mijn ",
    "verstuurd vanaf mijn ",
    "sendt fra min ",
    "skickat från min ",
    "wysłane z mojego ",
    "wysłano z mojego ",
    "отправлено с моего ",
    "надіслано з мого ",
    "寄自我的",
    "发自我的",
    "從我的",
    "get outlook for ",
];

/// Footer openings that need a device word ("Sent with Airmail").
const FOOTER_GENERIC_PREFIXES: &[&str] = &[
    "sent from ",
    "sent with ",
    "sent via ",
    "sent using ",
    "sent by ",
    "from my ",
    "envoyé de ",
    "envoyé depuis ",
    "envoyé avec ",
    "enviado desde ",
    "enviado de ",
    "inviato da ",
    "verzonden met ",
    "verstuurd met ",
    "verzonden vanaf ",
    "sendt fra ",
    "skickat från ",
    "wysłane z ",
    "отправлено с ",
];

/// "Sent from my iPhone", "Von meinem iPhone gesendet", "Get Outlook for
/// iOS"…: footers that mail apps add below every message.
fn is_mobile_footer(t: &str) -> bool {
    let unbracketed: String = t.chars().filter(|c| !matches!(c, '[' | ']')).collect();
    let s = unbracketed.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '(' | ')' | '<' | '>' | '*' | '_' | '-' | '"')
    });
    if s.is_empty() || s.chars().count() > 160 {
        return false;
    }
    let lower = s.to_lowercase();
    let head_end = [lower.find('<'), lower.find('('), lower.find("http")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(lower.len());
    let head = lower[..head_end].trim();
    let words = head.split_whitespace().count();
    if words == 0 || words > 14 {
        return false;
    }
    if FOOTER_PREFIXES.iter().any(|p| head.starts_with(p)) {
        return true;
    }
    let has_device = DEVICE_WORDS.iter().any(|w| head.contains(w));
    if has_device && FOOTER_GENERIC_PREFIXES.iter().any(|p| head.starts_with(p)) {
        return true;
    }
    // "Someone from mobile", "Von meinem Mobilgerät gesendet" variants.
    let head = head.trim_end_matches(['.', '!']);
    (words <= 5
        && (head.ends_with(" from mobile")
            || head.ends_with(" from my phone")
            || head.ends_with(" from my mobile")))
        || (head.contains("von meinem") && head.ends_with("gesendet"))
        || head.ends_with("iphoneから送信")
}

// ---------------------------------------------------------------------------
// Selection rules
// ---------------------------------------------------------------------------

/// Fewer text lines than this after an attribution and its quote means the
/// quote ends the reply (a trailing sign-off); more means an interleaved
/// reply whose quotes are kept.
const INTERLEAVED_MIN_TEXT_LINES: usize = 7;

fn select_reply<'a>(lines: &[&'a str], kinds: &[Kind]) -> Vec<&'a str> {
    let mut items: Vec<(&str, Kind)> = lines.iter().copied().zip(kinds.iter().copied()).collect();

    // 1. A delimiter after the first line of text ends the reply; delimiters
    //    before any text are just dropped.
    if let Some(first_text) = items.iter().position(|(_, k)| *k == Kind::Text) {
        if let Some(offset) = items[first_text..]
            .iter()
            .position(|(_, k)| *k == Kind::Delimiter)
        {
            items.truncate(first_text + offset);
        }
    }
    items.retain(|(_, k)| *k != Kind::Delimiter);

    // 2. Mobile footers go wherever they are.
    items.retain(|(_, k)| *k != Kind::Footer);

    // 3. History at the very top (a reply typed below the quote, or a bare
    //    forward): drop the marker or header block, and the quote below it
    //    when the sender's text follows.
    let start = leading_history_end(&items);
    items.drain(..start);

    // 4. The first marker or header block after the sender's text.
    cut_at_history(&mut items);

    // 5. A quote that ends the message, after the sender's text.
    let mut tail = items.len();
    while tail > 0 && matches!(items[tail - 1].1, Kind::Quote | Kind::Empty) {
        tail -= 1;
    }
    if items[tail..].iter().any(|(_, k)| *k == Kind::Quote)
        && items[..tail].iter().any(|(_, k)| *k == Kind::Text)
    {
        items.truncate(tail);
    }

    items.into_iter().map(|(line, _)| line).collect()
}

/// Index of the first line after the history that opens the message: a
/// marker or header block there is dropped, and so is a single quote block
/// right below it when the sender's text follows (a reply typed below the
/// quote, as Thunderbird users do).
fn leading_history_end(items: &[(&str, Kind)]) -> usize {
    let n = items.len();
    let mut start = 0;
    loop {
        let Some(p) = (start..n).find(|&i| items[i].1 != Kind::Empty) else {
            return start;
        };
        if !matches!(items[p].1, Kind::Marker | Kind::Header) {
            return start;
        }
        let mut q = p;
        while q < n && matches!(items[q].1, Kind::Marker | Kind::Header | Kind::Empty) {
            q += 1;
        }
        let mut r = q;
        while r < n && matches!(items[r].1, Kind::Quote | Kind::Empty | Kind::Marker) {
            r += 1;
        }
        let quote_follows = items[q..r].iter().any(|(_, k)| *k == Kind::Quote);
        let text_after = items[r..].iter().any(|(_, k)| *k == Kind::Text);
        // More quotes below mean an interleaved reply: its first quote is
        // the context of the first answer, so it stays.
        let interleaved = items[r..].iter().any(|(_, k)| *k == Kind::Quote);
        start = if quote_follows && text_after && !interleaved {
            r
        } else {
            q
        };
    }
}

/// Applies the marker rules after the sender's first text: cut at a header
/// block; cut at a marker not followed by a quote, or followed by a quote and
/// then only a few lines (a sign-off); otherwise (an interleaved reply) drop
/// just the marker line and go on.
fn cut_at_history(items: &mut Vec<(&str, Kind)>) {
    let n = items.len();
    // next_quote[i]: first quote at or after i; text_after[i]: text lines from i.
    let mut next_quote = vec![n; n + 1];
    let mut text_after = vec![0usize; n + 1];
    for i in (0..n).rev() {
        next_quote[i] = if items[i].1 == Kind::Quote {
            i
        } else {
            next_quote[i + 1]
        };
        text_after[i] = text_after[i + 1] + usize::from(items[i].1 == Kind::Text);
    }
    let mut drop = vec![false; n];
    let mut seen_text = false;
    let mut cut = n;
    let mut i = 0;
    while i < n {
        match items[i].1 {
            Kind::Text => seen_text = true,
            Kind::Header if seen_text => {
                cut = i;
                break;
            }
            Kind::Marker => {
                let mut end = i;
                while end < n && items[end].1 == Kind::Marker {
                    end += 1;
                }
                if seen_text {
                    let mut r = end;
                    while r < n
                        && matches!(
                            items[r].1,
                            Kind::Empty | Kind::Quote | Kind::Marker | Kind::Header
                        )
                    {
                        r += 1;
                    }
                    let quote_follows = next_quote[end] < n;
                    let short_rest =
                        next_quote[r] == n && text_after[r] < INTERLEAVED_MIN_TEXT_LINES;
                    if !quote_follows || short_rest {
                        cut = i;
                        break;
                    }
                }
                for flag in &mut drop[i..end] {
                    *flag = true;
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut index = 0;
    items.truncate(cut);
    items.retain(|_| {
        let keep = !drop[index];
        index += 1;
        keep
    });
}

// ---------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------

/// Converts an HTML body to plain text for trimming: drops `<head>`,
/// `<style>`, `<script>` and comments, stops at the quote containers that
/// mark the start of history (Outlook's `divRplyFwdMsg`, `appendonsend`,
/// `stopSpelling` rule and border-top separators), skips Gmail's
/// `gmail_quote`, Thunderbird's `moz-cite-prefix` and Yahoo's quote,
/// renders `<blockquote>` as `>` lines (so interleaved replies survive),
/// block elements as line breaks, `<hr>` as a delimiter, and decodes
/// entities. Malformed markup degrades to text; it never panics.
pub fn html_to_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let bytes = html.as_bytes();
    let len = bytes.len();
    let mut w = TextWriter::default();
    // (tag name, nesting depth) of a subtree being skipped.
    let mut skipping: Option<(String, usize)> = None;
    let mut unclosed = [false; RAW_TAGS.len()];
    let mut i = 0;
    while i < len {
        if bytes[i] == b'<' {
            if lower[i..].starts_with("<!--") {
                i = lower[i + 4..].find("-->").map_or(len, |p| i + 4 + p + 3);
                continue;
            }
            match bytes.get(i + 1) {
                Some(b'!' | b'?') => {
                    i = lower[i..].find('>').map_or(len, |p| i + p + 1);
                    continue;
                }
                Some(c) if c.is_ascii_alphabetic() || *c == b'/' => {
                    let (tag, end) = parse_tag(html, i);
                    i = end;
                    if let Some((name, depth)) = skipping.as_mut() {
                        if tag.name == *name && !tag.self_closing {
                            if tag.closing {
                                *depth -= 1;
                            } else {
                                *depth += 1;
                            }
                            if *depth == 0 {
                                skipping = None;
                            }
                        }
                        continue;
                    }
                    let raw_slot = RAW_TAGS.iter().position(|t| *t == tag.name);
                    if let (false, Some(slot)) = (tag.closing, raw_slot) {
                        // Skip the content up to the closing tag. Once that
                        // tag is known to be missing, don't search again
                        // (repeated unclosed tags would be quadratic).
                        let close = format!("</{}", tag.name);
                        let found = if unclosed[slot] {
                            None
                        } else {
                            lower[i..].find(&close)
                        };
                        match found {
                            Some(p) => {
                                i = lower[i + p..].find('>').map_or(len, |q| i + p + q + 1);
                            }
                            None => unclosed[slot] = true,
                        }
                        continue;
                    }
                    match container_action(&tag) {
                        Container::Truncate => break,
                        Container::Skip if !tag.closing && !tag.self_closing => {
                            skipping = Some((tag.name.clone(), 1));
                            continue;
                        }
                        _ => {}
                    }
                    w.tag(&tag);
                    continue;
                }
                _ => {}
            }
        }
        // A literal `<` (not a tag) is text: search for the next one after it.
        let from = if bytes[i] == b'<' { i + 1 } else { i };
        let end = lower[from..].find('<').map_or(len, |p| from + p);
        if skipping.is_none() {
            w.text(&decode_entities(&html[i..end]));
        }
        i = end;
    }
    w.finish()
}

/// Elements whose content is never shown, skipped up to their closing tag
/// (an unclosed one is ignored rather than swallowing the message).
const RAW_TAGS: [&str; 4] = ["style", "script", "head", "title"];

struct Tag {
    name: String,
    closing: bool,
    self_closing: bool,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the tag starting at `start` (which holds `<`); returns it and the
/// index after its `>` (or the end of input for an unterminated tag).
fn parse_tag(html: &str, start: usize) -> (Tag, usize) {
    let bytes = html.as_bytes();
    let len = bytes.len();
    let mut pos = start + 1;
    let closing = bytes.get(pos) == Some(&b'/');
    if closing {
        pos += 1;
    }
    let name_start = pos;
    while pos < len
        && (bytes[pos].is_ascii_alphanumeric() || matches!(bytes[pos], b':' | b'-' | b'_'))
    {
        pos += 1;
    }
    let name = html[name_start..pos].to_ascii_lowercase();
    let mut attrs = Vec::new();
    let mut self_closing = false;
    while pos < len {
        let c = bytes[pos];
        if c == b'>' {
            return (
                Tag {
                    name,
                    closing,
                    self_closing,
                    attrs,
                },
                pos + 1,
            );
        }
        if c == b'/' {
            self_closing = true;
            pos += 1;
            continue;
        }
        if c.is_ascii_whitespace() || c == b'=' || c == b'"' || c == b'\'' {
            pos += 1;
            continue;
        }
        self_closing = false;
        let attr_start = pos;
        while pos < len
            && !bytes[pos].is_ascii_whitespace()
            && !matches!(bytes[pos], b'=' | b'>' | b'/')
        {
            pos += 1;
        }
        let attr_name = html[attr_start..pos].to_ascii_lowercase();
        while pos < len && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let mut value = String::new();
        if bytes.get(pos) == Some(&b'=') {
            pos += 1;
            while pos < len && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            match bytes.get(pos) {
                Some(&q) if q == b'"' || q == b'\'' => {
                    let value_start = pos + 1;
                    let value_end = html[value_start..]
                        .find(q as char)
                        .map_or(len, |p| value_start + p);
                    value = decode_entities(&html[value_start..value_end]);
                    pos = (value_end + 1).min(len);
                }
                _ => {
                    let value_start = pos;
                    while pos < len && !bytes[pos].is_ascii_whitespace() && bytes[pos] != b'>' {
                        pos += 1;
                    }
                    value = decode_entities(&html[value_start..pos]);
                }
            }
        }
        attrs.push((attr_name, value));
    }
    (
        Tag {
            name,
            closing,
            self_closing,
            attrs,
        },
        len,
    )
}

enum Container {
    /// Not a quote container.
    None,
    /// History starts here: drop this element and everything after it.
    Truncate,
    /// Drop this element's subtree only.
    Skip,
}

fn container_action(tag: &Tag) -> Container {
    if tag.closing {
        return Container::None;
    }
    let id = tag.attr("id").unwrap_or("").to_ascii_lowercase();
    let classes = tag.attr("class").unwrap_or("").to_ascii_lowercase();
    let style: String = tag
        .attr("style")
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    let has_class = |name: &str| classes.split_whitespace().any(|c| c == name);
    if matches!(
        id.as_str(),
        "divrplyfwdmsg"
            | "appendonsend"
            | "olk_src_body_section"
            | "mail-editor-reference-message-container"
    ) || has_class("outlookmessageheader")
    {
        return Container::Truncate;
    }
    if tag.name == "hr" && matches!(id.as_str(), "stopspelling" | "zwchr") {
        return Container::Truncate;
    }
    if style.contains("border-top:solid#e1e1e1")
        || style.contains("border-top:solid#b5c4df")
        || (style.contains("border-top-color:rgb(229,229,229)")
            && style.contains("border-top-style:solid"))
    {
        return Container::Truncate;
    }
    if tag.name == "div"
        && (has_class("gmail_quote")
            || has_class("gmail_quote_container")
            || has_class("moz-cite-prefix")
            || has_class("yahoo_quoted"))
    {
        return Container::Skip;
    }
    Container::None
}

/// Elements that start and end on their own line.
const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "table",
    "tr",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "section",
    "article",
    "header",
    "footer",
    "center",
    "address",
    "form",
    "fieldset",
    "main",
    "nav",
    "aside",
    "figure",
    "figcaption",
    "body",
    "html",
    "caption",
    "tbody",
    "thead",
    "tfoot",
];

const MAX_QUOTE_PREFIX: usize = 8;

/// Accumulates text the way a browser lays it out, roughly: white space
/// collapses outside `<pre>`, block elements break lines, lines inside
/// `<blockquote>` get `>` prefixes.
#[derive(Default)]
struct TextWriter {
    out: String,
    quote_depth: usize,
    pre_depth: usize,
    pending_space: bool,
    /// The current line has its quote prefix (and possibly text).
    line_started: bool,
    /// The current line has text.
    line_has_text: bool,
}

impl TextWriter {
    /// The `>` prefix of a line, capped so that hostile nesting cannot
    /// multiply the size of the output.
    fn push_quote_prefix(&mut self) {
        for _ in 0..self.quote_depth.min(MAX_QUOTE_PREFIX) {
            self.out.push('>');
        }
    }

    fn start_line(&mut self) {
        if !self.line_started {
            self.push_quote_prefix();
            if self.quote_depth > 0 {
                self.out.push(' ');
            }
            self.line_started = true;
        }
    }

    fn newline(&mut self) {
        if !self.line_started {
            self.push_quote_prefix();
        }
        self.out.push('\n');
        self.line_started = false;
        self.line_has_text = false;
        self.pending_space = false;
    }

    fn block_break(&mut self) {
        if self.line_has_text {
            self.newline();
        }
        self.pending_space = false;
    }

    fn push_char(&mut self, c: char) {
        self.start_line();
        if self.pending_space && self.line_has_text {
            self.out.push(' ');
        }
        self.pending_space = false;
        self.out.push(c);
        self.line_has_text = true;
    }

    fn text(&mut self, s: &str) {
        for c in s.chars() {
            if self.pre_depth > 0 {
                match c {
                    '\n' => self.newline(),
                    '\r' => {}
                    _ => self.push_char(if c == '\u{a0}' { ' ' } else { c }),
                }
            } else if c == '\u{a0}' {
                self.push_char(' ');
            } else if c.is_whitespace() {
                self.pending_space = true;
            } else if !c.is_control() {
                self.push_char(c);
            }
        }
    }

    fn tag(&mut self, tag: &Tag) {
        let name = tag.name.as_str();
        match name {
            "br" => self.newline(),
            "hr" if !tag.closing => {
                self.block_break();
                self.text("________________________________");
                self.newline();
            }
            "blockquote" => {
                self.block_break();
                if tag.closing {
                    self.quote_depth = self.quote_depth.saturating_sub(1);
                } else if !tag.self_closing {
                    self.quote_depth += 1;
                }
            }
            "pre" => {
                self.block_break();
                if tag.closing {
                    self.pre_depth = self.pre_depth.saturating_sub(1);
                } else if !tag.self_closing {
                    self.pre_depth += 1;
                }
            }
            "li" => {
                self.block_break();
                if !tag.closing {
                    self.text("- ");
                }
            }
            "td" | "th" => self.pending_space = true,
            _ if BLOCK_TAGS.contains(&name) => self.block_break(),
            _ => {}
        }
    }

    /// The text, with runs of blank lines folded to one.
    fn finish(self) -> String {
        let mut out = String::with_capacity(self.out.len());
        let mut blank_run = 0;
        for line in self.out.split('\n') {
            let line = line.trim_end();
            if line.is_empty() {
                blank_run += 1;
                if blank_run > 1 {
                    continue;
                }
            } else {
                blank_run = 0;
            }
            out.push_str(line);
            out.push('\n');
        }
        out.truncate(out.trim_end().len());
        out
    }
}

/// Decodes character references: numeric ones and the named ones mail
/// clients actually emit. Unknown or malformed references stay as written.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after
            .char_indices()
            .take(12)
            .find(|(_, c)| *c == ';')
            .map(|(p, _)| p);
        let decoded = semi.and_then(|p| decode_entity(&after[..p]).map(|c| (c, p)));
        match decoded {
            Some((c, p)) => {
                out.push(c);
                rest = &after[p + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse::<u32>().ok()?,
        };
        return match code {
            0 => Some('\u{fffd}'),
            _ => Some(char::from_u32(code).unwrap_or('\u{fffd}')),
        };
    }
    let c = match name {
        "nbsp" => '\u{a0}',
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "mdash" => '—',
        "ndash" => '–',
        "hellip" => '…',
        "laquo" => '«',
        "raquo" => '»',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        "pound" => '£',
        "deg" => '°',
        "times" => '×',
        "shy" | "zwnj" | "zwj" => '\u{200b}',
        "auml" => 'ä',
        "ouml" => 'ö',
        "uuml" => 'ü',
        "Auml" => 'Ä',
        "Ouml" => 'Ö',
        "Uuml" => 'Ü',
        "szlig" => 'ß',
        "eacute" => 'é',
        "egrave" => 'è',
        "agrave" => 'à',
        "ccedil" => 'ç',
        _ => return None,
    };
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trims_to(input: &str, expected: &str) {
        assert_eq!(trim_reply(input), expected, "input:\n{input}");
    }

    // --- normalisation and the never-empty rule ---

    #[test]
    fn normalizes_line_endings_and_outer_blank_lines() {
        trims_to("\r\n\r\nHello\r\nworld  \r\n\r\n", "Hello\nworld");
        trims_to("a\r\r\nb\rc", "a\nb\nc");
    }

    #[test]
    fn keeps_plain_text_and_indentation() {
        trims_to("    code first\n\n- A\n- B", "    code first\n\n- A\n- B");
    }

    #[test]
    fn never_returns_nothing() {
        trims_to("> only a quote", "> only a quote");
        trims_to(
            "On Mon, Feb 1, 2016 at 4:58 AM, X <x@y.z> wrote:",
            "On Mon, Feb 1, 2016 at 4:58 AM, X <x@y.z> wrote:",
        );
        trims_to("Sent from my iPhone", "Sent from my iPhone");
        assert_eq!(trim_reply(""), "");
        assert_eq!(trim_reply(" \n\t\n"), "");
    }

    // --- quotes ---

    #[test]
    fn cuts_a_quote_ending_the_message() {
        trims_to("Thanks!\n\n> old text\n>\n> more", "Thanks!");
        trims_to("Thanks!\n> Subject: x\n> From: y", "Thanks!");
    }

    #[test]
    fn keeps_a_quote_followed_by_the_answer() {
        trims_to("> question?\n\nanswer", "> question?\n\nanswer");
    }

    #[test]
    fn named_quote_prefixes_are_quotes() {
        assert!(is_quote_line("C> text"));
        assert!(is_quote_line("Richard> text"));
        assert!(is_quote_line("   > text"));
        assert!(!is_quote_line("<<sent by galaxy>>"));
        assert!(!is_quote_line("a -> b"));
    }

    // --- attribution lines ---

    #[test]
    fn english_attribution_and_quote() {
        trims_to(
            "Hello\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan <x@gmail.com> wrote:\n\n> Hi",
            "Hello",
        );
    }

    #[test]
    fn attribution_wrapped_over_lines() {
        trims_to(
            "Sure.\n\nOn Thu, Jun 20, 2013 at 4:18 PM, matt via Meta <\ninfo@example.org> wrote:\n\n> question",
            "Sure.",
        );
        trims_to(
            "One\n\nOn Thu, 31 Mar 2016 at 11:16 Some One\n\n<\nmailto:Some One <a@b.c>\n> wrote:\n\nTwo",
            "One",
        );
    }

    #[test]
    fn attributions_in_other_languages() {
        let cases = [
            "Am 03.02.2016 3:35 nachm. schrieb Max <noreply@example.org>:",
            "Max <max@example.org> schrieb am Fr., 28.\nApr. 2017 um 11:53 Uhr:",
            "Le 4 janv. 2016 19:03, \"Neil\"\n<info@example.org>\na écrit :",
            "El jueves, 21 de noviembre de 2013, coding escribió:",
            "Op 16 aug. 2014 05:13 schreef \"coding\" <info@example.org> het\nvolgende geschreven:",
            "Il 26 marzo 2016 alle 13.16 Sam <info@example.org> ha scritto:",
            "23 mar 2017 21:25 \"Neil\" <meta@example.org> napisał(a):",
            "Em 2 de fevereiro de 2015 10:58, discourse <\ninfo@example.org> escreveu:",
            "понедельник, 6 октября 2014 г. пользователь lidel написал:",
            "30 серп. 2016 р. 20:45 \"Arpit\" <no-reply@example.com> пише:",
            "Den 15. jun. 2016 kl. 20.42 skrev Jeff <info@example.org>:",
            "在 2016年12月12日，下午8:45，Erlend <meta@example.org> 写道：",
            "Some One <info@example.org> wrote:",
            "At 6/16/2016 08:32 PM, you wrote:",
            "---- On Tue, 22 Dec 2015 14:17:36 +0530 Sam <info@example.org> wrote ----",
        ];
        for attribution in cases {
            trims_to(
                &format!("New text.\n\n{attribution}\n\n> old text\n> more"),
                "New text.",
            );
            trims_to(
                &format!("New text.\n\n{attribution}\n\nold text, unquoted"),
                "New text.",
            );
        }
    }

    #[test]
    fn gmail_date_attributions() {
        trims_to(
            "Before\n\n2016-03-03 17:21 GMT+01:00 Some One\n\nAfter",
            "Before",
        );
        trims_to(
            "Before\n\n2016-10-24 15:36 GMT+02:00 Foo <\ninfo@foo.bar>:\n\n> q",
            "Before",
        );
        trims_to(
            "Before\n\n2013/7/20 sam via Meta <info@example.org>\n\n| old",
            "Before",
        );
    }

    #[test]
    fn attribution_needs_its_shape() {
        trims_to(
            "On this day\n\nI wrote something\n\nvery interesting.",
            "On this day\n\nI wrote something\n\nvery interesting.",
        );
        trims_to(
            "Here is what support wrote:\nplease reboot",
            "Here is what support wrote:\nplease reboot",
        );
        assert!(!is_attribution("On the other hand, this is what I wrote:"));
    }

    #[test]
    fn reply_below_the_quote() {
        trims_to(
            "On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi\nHello",
            "Hello",
        );
        trims_to(
            "On 8 May 2017 17:34, \"Andy\" <a@b.c> wrote:\n\n    code\n\nIt should be",
            "    code\n\nIt should be",
        );
    }

    #[test]
    fn interleaved_reply_keeps_quotes() {
        let input = "Intro.\nOn Tue, 2011-03-01 at 18:02 +0530, Some One wrote:\n> Q1\n\nA1\nA1\nA1\n\n> Q2\n\nA2\nA2\nA2\nA2";
        trims_to(
            input,
            "Intro.\n> Q1\n\nA1\nA1\nA1\n\n> Q2\n\nA2\nA2\nA2\nA2",
        );
    }

    #[test]
    fn attribution_before_quote_in_any_language() {
        trims_to(
            "Hi.\nThu, 26 Jun 2014 14:00:51 +0400 от Alexander <abc@example.com>:\n> Hello",
            "Hi.",
        );
    }

    // --- Outlook headers and separators ---

    #[test]
    fn outlook_header_blocks() {
        trims_to(
            "Reply\n\nFrom: A <a@b.c>\nSent: Monday\nTo: B\nSubject: S\n\nold",
            "Reply",
        );
        trims_to(
            "Reply\n\n*From:* A\n*Sent:* 2016-01-27\n*To:* B\n*Subject:* S\n\nold",
            "Reply",
        );
        trims_to(
            "Gruß\n\nVon: A\nGesendet: Do\nAn: B\nBetreff: S\n\nalt",
            "Gruß",
        );
        trims_to(
            "Hej\n\nFrån: A [mailto:a@b.c]\nSkickat: den 5 juni\nTill: B\nÄmne: S\n\ngammal",
            "Hej",
        );
        trims_to(
            "Ciao\n\nDa: A\nRisposta: B\nData: giovedì\nA: C\nOggetto: S\n\nvecchio",
            "Ciao",
        );
    }

    #[test]
    fn two_header_lines_are_text() {
        trims_to(
            "To: everyone\nSubject: the move\n\nWe move on Monday.",
            "To: everyone\nSubject: the move\n\nWe move on Monday.",
        );
    }

    #[test]
    fn original_message_separators() {
        trims_to(
            "Hello\n\n-----Original Message-----\nFrom: x\n\nold",
            "Hello",
        );
        trims_to("Hello\n\n----- Original Message -----\nold", "Hello");
        trims_to("Gruß\n\n-----Ursprüngliche Nachricht-----\nalt", "Gruß");
        trims_to("Igual\n\n-----Mensaje original-----\nDe: x", "Igual");
        trims_to("Bar\n\n*-------- Original Message --------*\n\nEND", "Bar");
    }

    #[test]
    fn forwarded_messages() {
        trims_to(
            "See below.\n\n---------- Forwarded message ---------\nFrom: a\nDate: b\nTo: c\n\nbody",
            "See below.",
        );
        trims_to(
            "See below.\n\n> Begin forwarded message:\n>\n> From: a",
            "See below.",
        );
        // A bare forward keeps the forwarded body (there is nothing else).
        trims_to(
            "---------- Forwarded message ----------\nFrom: A <a@b.c>\nDate: Thu\nSubject: two\nlines\nTo: d@e.f\n\n\nForwarded body.",
            "Forwarded body.",
        );
    }

    #[test]
    fn delimiters_end_the_reply() {
        trims_to("Reply\n________________________________\nFrom: x", "Reply");
        trims_to("Reply\n\n   -------\nold", "Reply");
        trims_to("Reply\n\nᐧ\nrest", "Reply");
        trims_to(
            "This is not a ---------- delimiter.",
            "This is not a ---------- delimiter.",
        );
    }

    #[test]
    fn signatures_after_sig_dash() {
        trims_to("Thanks\n\n-- \nJohn Doe\nACME", "Thanks");
        trims_to("Thanks\n\n--\nJohn Doe\n+1 555", "Thanks");
    }

    #[test]
    fn code_blocks_are_text() {
        let input = "Look:\n\n```\n# comment\n####\n-- \n```\n\nDone.";
        trims_to(input, input);
        // An unclosed fence does not switch trimming off.
        trims_to("```\nText\n\n-- \nsig", "```\nText");
    }

    #[test]
    fn setext_heading_is_not_a_delimiter() {
        trims_to("Title\n=====\n\nBody", "Title\n=====\n\nBody");
    }

    // --- mobile footers ---

    #[test]
    fn mobile_footers() {
        let footers = [
            "Sent from my iPhone",
            "Sent from my Android",
            "Sent from my Samsung Galaxy s5 Octacore device",
            "Sent from my HTC M8 Android phone.  Please excuse typoze",
            "Sent from Outlook Mobile<https://foo.bar>",
            "Sent from [mail](https://go.microsoft.com/fwlink/?LinkId=550986) for windows 10",
            "Sent with Airmail",
            "Sent via mobile",
            "Sent from Yahoo Mail on Android",
            "<<sent by galaxy>>",
            "(Sent from mobile device)",
            "From My Iphone 6",
            "Someone from mobile",
            "Von meinem iPhone gesendet",
            "Von meinem Mobilgerät gesendet",
            "Diese Nachricht wurde von meinem Android-Mobiltelefon mit K-9 Mail gesendet.",
            "Envoyé de mon iPhone",
            "Envoyé depuis mon iPhone",
            "Enviado desde mi iPhone",
            "Inviato da iPhone",
            "Verzonden met BlackBerry Work",
            "Sendt fra min iPad",
            "Skickat från min iPhone",
            "Wysłane z mojego iPhone'a",
            "Отправлено с моего iPhone",
            "寄自我的 iPhone 手機",
            "Get Outlook for iOShttps://aka.ms/o0ukef",
            "Get [Outlook for Android](https://aka.ms/ghei36)",
        ];
        for footer in footers {
            assert!(is_mobile_footer(footer), "{footer}");
            trims_to(&format!("Thanks!\n\n{footer}"), "Thanks!");
        }
        for text in [
            "Sent from our office yesterday: the parcel.",
            "From my point of view this is fine",
            "Sent the invoice on Monday",
        ] {
            assert!(!is_mobile_footer(text), "{text}");
        }
    }

    // --- HTML ---

    #[test]
    fn html_gmail_quote() {
        let html = r#"<div dir="ltr">Hi.<div><br></div><div>Thanks,</div><div>Alex</div></div><div class="gmail_quote">On Thu, Jun 26, 2014 at 2:14 PM, A &lt;<a href="mailto:a@b.c">a@b.c</a>&gt; wrote:<br><blockquote class="gmail_quote">Hello!</blockquote></div>"#;
        assert_eq!(trim_html_reply(html), "Hi.\n\nThanks,\nAlex");
    }

    #[test]
    fn html_cite_blockquote_and_moz_prefix() {
        let html = r#"<body>Fine.<br><div class="moz-cite-prefix">On 26.06.2014 14:41, Alexander L wrote:<br></div><blockquote type="cite"><div>Hello! How are you?</div></blockquote></body>"#;
        assert_eq!(trim_html_reply(html), "Fine.");
        let apple = r#"<div>Fine.</div><div><br><div>On 22 Aug 2015, at 19:21, Adam &lt;a@b.c&gt; wrote:</div><br><blockquote type="cite"><div>Hi there!</div></blockquote></div>"#;
        assert_eq!(trim_html_reply(apple), "Fine.");
    }

    #[test]
    fn html_interleaved_blockquotes_keep_answers() {
        let html = "<div>On Mon, Feb 1, 2016 at 4:58 AM, A &lt;a@b.c&gt; wrote:</div><blockquote type=\"cite\">Q1</blockquote><div>A1</div><div>A1</div><div>A1</div><blockquote type=\"cite\">Q2</blockquote><div>A2</div><div>A2</div><div>A2</div><div>A2</div>";
        assert_eq!(
            trim_html_reply(html),
            "> Q1\nA1\nA1\nA1\n> Q2\nA2\nA2\nA2\nA2"
        );
    }

    #[test]
    fn html_outlook_separators() {
        let cases = [
            r#"<p>Fine.</p><div id="divRplyFwdMsg"><b>From:</b> A</div><div>Hello</div>"#,
            r#"<p>Fine.</p><div id="appendonsend"></div><hr><div>Hello</div>"#,
            r#"<div>Fine.<hr id="stopSpelling">Date: x<br>Hello</div>"#,
            r#"<p>Fine.</p><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in"><p><b>From:</b> A</p></div><p>Hello</p>"#,
            r#"<p>Fine.</p><div style='border:none;border-top:solid #B5C4DF 1.0pt'><p><b>From:</b> A</p></div><p>Hello</p>"#,
            r#"<p>Fine.</p><p><b>From:</b> A<br><b>Sent:</b> Mon<br><b>To:</b> B<br><b>Subject:</b> S</p><p>Hello</p>"#,
        ];
        for html in cases {
            assert_eq!(trim_html_reply(html), "Fine.", "{html}");
        }
    }

    #[test]
    fn html_yandex_blockquote() {
        let html = r#"<p>Fine.<br /><br />26.06.2014, 14:41, "A" &lt;<a href="mailto:a@b.c">a@b.c</a>&gt;:</p><blockquote> Hello!<br /> Sasha.</blockquote>"#;
        assert_eq!(trim_html_reply(html), "Fine.");
    }

    #[test]
    fn html_to_text_basics() {
        let html = "<html><head><title>T</title><style>p{x:y}</style></head><body><script>var a='<p>';</script>\
                    <p>a&amp;b &lt;c&gt; &#233;&#x20AC;&nbsp;&bogus; & x</p><ul><li>one</li><li>two</li></ul>\
                    <pre>  keep\n  this</pre><table><tr><td>c1</td><td>c2</td></tr></table><!-- gone --></body></html>";
        assert_eq!(
            html_to_text(html),
            "a&b <c> é€ &bogus; & x\n- one\n- two\n  keep\n  this\nc1 c2"
        );
    }

    #[test]
    fn html_malformed_input_does_not_panic() {
        let inputs = [
            "<",
            "<a",
            "<a href=\"x",
            "<!--",
            "<!",
            "</",
            "<div class='gmail_quote'>never closed",
            "<style>never closed",
            "&",
            "&#",
            "&#xZZ;",
            "&#1114112;",
            "<p>ü<",
            "é<b>ü</b>ß<",
            "<<<>>>",
            "<blockquote><blockquote>x</blockquote></blockquote></blockquote>",
            "<a =x>y</a>",
            "<a/ b/>c",
        ];
        for html in inputs {
            let _ = trim_html_reply(html);
        }
        assert_eq!(trim_html_reply("<p>ü<"), "ü<");
    }

    #[test]
    fn long_inputs_stay_fast() {
        let text =
            "-- \n".repeat(50_000) + &"> q\nOn 1 Jan 2020, X <x@y.z> wrote:\n".repeat(20_000);
        let _ = trim_reply(&text);
        let html = "<div>".repeat(50_000) + &"<blockquote>x".repeat(10_000);
        let _ = trim_html_reply(&html);
        let html = "<style>x".repeat(100_000);
        let _ = trim_html_reply(&html);
        let html = "<blockquote>".repeat(20_000) + &"<br>".repeat(100_000);
        assert!(html_to_text(&html).len() < 2_000_000);
    }
}
