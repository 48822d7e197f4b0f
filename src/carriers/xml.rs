//! A small XML tree for carrier answers: element local names (namespace prefixes and `xmlns`
//! declarations are ignored, so namespaced and bare answers read alike), their text and
//! children. Attributes are not kept: the tracking answers read here carry none that matter.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// Deeper nesting than any carrier answer has; protects the reader from a hostile body.
const MAX_DEPTH: usize = 64;

/// One element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name, without namespace prefix.
    pub name: String,
    /// The element's own text, untrimmed.
    pub text: String,
    /// Child elements, in document order.
    pub children: Vec<Element>,
}

fn named(start: &BytesStart<'_>) -> Element {
    Element {
        name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
        ..Element::default()
    }
}

impl Element {
    /// Parse a whole document; says what is wrong when it is not well-formed XML (an HTML
    /// error page, a truncated answer).
    pub fn parse(text: &str) -> Result<Element, String> {
        let mut reader = Reader::from_str(text);
        let mut open: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        fn close(
            element: Element,
            open: &mut [Element],
            root: &mut Option<Element>,
        ) -> Result<(), String> {
            match open.last_mut() {
                Some(parent) => parent.children.push(element),
                None if root.is_none() => *root = Some(element),
                None => return Err(format!("a second root element <{}>", element.name)),
            }
            Ok(())
        }
        loop {
            let event = reader
                .read_event()
                .map_err(|e| format!("at byte {}: {e}", reader.error_position()))?;
            match event {
                Event::Start(start) => {
                    if open.len() >= MAX_DEPTH {
                        return Err(format!("nested deeper than {MAX_DEPTH} elements"));
                    }
                    open.push(named(&start));
                }
                Event::Empty(start) => close(named(&start), &mut open, &mut root)?,
                Event::End(_) => {
                    let element = open.pop().ok_or("an end tag without its start")?;
                    close(element, &mut open, &mut root)?;
                }
                Event::Text(text) => {
                    let text = text
                        .unescape()
                        .map(|t| t.into_owned())
                        .unwrap_or_else(|_| String::from_utf8_lossy(&text).into_owned());
                    match open.last_mut() {
                        Some(element) => element.text.push_str(&text),
                        None if text.trim().is_empty() => {}
                        None => {
                            let start: String = text.trim().chars().take(40).collect();
                            return Err(format!("text outside any element: `{start}`"));
                        }
                    }
                }
                Event::CData(data) => {
                    if let Some(element) = open.last_mut() {
                        element.text.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if let Some(unclosed) = open.last() {
            return Err(format!("the document ends inside <{}>", unclosed.name));
        }
        root.ok_or_else(|| "no XML element at all".to_owned())
    }

    /// The element's text, trimmed.
    pub fn text(&self) -> &str {
        self.text.trim()
    }

    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child called `name`, in document order.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child called `name`, when it has any.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(Element::text)
            .filter(|t| !t.is_empty())
    }

    /// This element or the first descendant called `name`, depth first.
    pub fn find(&self, name: &str) -> Option<&Element> {
        let mut pending = vec![self];
        while let Some(element) = pending.pop() {
            if element.name == name {
                return Some(element);
            }
            pending.extend(element.children.iter().rev());
        }
        None
    }

    /// The element written back as compact XML (local names only), for error excerpts.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        out.push('>');
        out.push_str(&quick_xml::escape::escape(self.text()));
        for child in &self.children {
            child.render_into(out);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}
