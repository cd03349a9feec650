use super::*;
use crate::{Attribute, Namespace, Node, ns};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                      xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>";

/// Every event and the error, if any, from feeding `input` in one piece.
fn parse(input: &[u8], limits: Limits) -> (Vec<StreamEvent>, Option<XmlError>) {
    let mut parser = StreamParser::new(limits);
    parser.feed(input);
    drain(&mut parser)
}

fn drain(parser: &mut StreamParser) -> (Vec<StreamEvent>, Option<XmlError>) {
    let mut events = Vec::new();
    loop {
        match parser.next_event() {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return (events, None),
            Err(error) => return (events, Some(error)),
        }
    }
}

/// The top-level elements of a client stream with `content` after the header.
fn stanzas(content: &str) -> Result<Vec<Element>, XmlError> {
    let (events, error) = parse(format!("{HEADER}{content}").as_bytes(), Limits::CLIENT);
    if let Some(error) = error {
        return Err(error);
    }
    let mut iter = events.into_iter();
    assert!(matches!(iter.next(), Some(StreamEvent::Open(_))));
    Ok(iter
        .filter_map(|e| match e {
            StreamEvent::Element(el) => Some(el),
            _ => None,
        })
        .collect())
}

fn stanza(content: &str) -> Element {
    let mut all = stanzas(content).unwrap_or_else(|e| panic!("{content}: {e}"));
    assert_eq!(all.len(), 1, "{content}");
    all.remove(0)
}

fn error(content: &str) -> XmlError {
    match stanzas(content) {
        Ok(els) => panic!("accepted {content:?}: {els:?}"),
        Err(e) => e,
    }
}

fn assert_not_well_formed(content: &str) {
    assert!(
        matches!(error(content), XmlError::NotWellFormed(_)),
        "{content}: {:?}",
        error(content)
    );
}

fn assert_restricted(content: &str) {
    assert!(
        matches!(error(content), XmlError::Restricted(_)),
        "{content}: {:?}",
        error(content)
    );
}

#[test]
fn header_and_close() {
    let (events, error) = parse(
        format!("{HEADER}</stream:stream>").as_bytes(),
        Limits::CLIENT,
    );
    assert_eq!(error, None);
    let [StreamEvent::Open(header), StreamEvent::Close] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(header.default_ns, "jabber:client");
    assert!(header.element.is("stream", ns::STREAMS));
    assert_eq!(header.element.attr("to"), Some("example.org"));
    assert_eq!(header.element.attr("version"), Some("1.0"));
    assert_eq!(
        header.element.attributes().len(),
        2,
        "namespace declarations are not attributes"
    );
}

#[test]
fn header_without_declaration_or_default_namespace() {
    let (events, error) = parse(
        b"\n <stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
        Limits::CLIENT,
    );
    assert_eq!(error, None);
    let [StreamEvent::Open(header)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(header.default_ns, "");
}

#[test]
fn self_closing_header_opens_and_closes() {
    let (events, error) = parse(
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>",
        Limits::CLIENT,
    );
    assert_eq!(error, None);
    assert!(matches!(
        &events[..],
        [StreamEvent::Open(_), StreamEvent::Close]
    ));
}

#[test]
fn closing_tag_must_match_header() {
    assert!(matches!(
        parse(format!("{HEADER}</stream>").as_bytes(), Limits::CLIENT).1,
        Some(XmlError::NotWellFormed(_))
    ));
    let (events, error) = parse(
        format!("{HEADER}</stream:stream \n>  \n").as_bytes(),
        Limits::CLIENT,
    );
    assert_eq!(error, None);
    assert!(matches!(events.last(), Some(StreamEvent::Close)));
    let (events, error) = parse(
        format!("{HEADER}</stream:stream><message/>").as_bytes(),
        Limits::CLIENT,
    );
    assert!(matches!(events.last(), Some(StreamEvent::Close)));
    assert!(matches!(error, Some(XmlError::NotWellFormed(_))));
}

#[test]
fn header_prefixes_are_in_scope_for_stanzas() {
    let input = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
                 xmlns:db='jabber:server:dialback' xmlns:x='urn:x'>\
                 <db:result from='a' to='b'>key</db:result><iq x:attr='1'/>";
    let (events, error) = parse(input.as_bytes(), Limits::SERVER);
    assert_eq!(error, None);
    let [
        StreamEvent::Open(header),
        StreamEvent::Element(result),
        StreamEvent::Element(iq),
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(header.default_ns, ns::SERVER);
    assert!(result.is("result", "jabber:server:dialback"));
    assert_eq!(result.text(), "key");
    assert!(iq.is("iq", ns::SERVER));
    assert_eq!(iq.attr_ns("attr", "urn:x"), Some("1"));
}

#[test]
fn stanza_namespaces_and_attributes() {
    let el = stanza(
        "<message to='a@b' xml:lang='en' xmlns:p='urn:p' p:x='1'><body>hi</body>\
         <active xmlns='http://jabber.org/protocol/chatstates'><inner/></active><p:q/></message>",
    );
    assert!(el.is("message", ns::CLIENT));
    assert_eq!(
        el.attributes(),
        &[
            Attribute {
                ns: Namespace::NONE,
                name: "to".into(),
                value: "a@b".into()
            },
            Attribute {
                ns: ns::XML.into(),
                name: "lang".into(),
                value: "en".into()
            },
            Attribute {
                ns: Namespace::shared("urn:p"),
                name: "x".into(),
                value: "1".into()
            },
        ]
    );
    assert_eq!(el.attr("xml:lang"), Some("en"));
    assert!(el.has_child("body", ns::CLIENT));
    let active = el
        .get_child("active", "http://jabber.org/protocol/chatstates")
        .unwrap();
    assert!(active.has_child("inner", "http://jabber.org/protocol/chatstates"));
    assert!(el.has_child("q", "urn:p"));
}

#[test]
fn empty_default_namespace_undeclares() {
    let el = stanza("<message><x xmlns=''><y/></x></message>");
    let x = el.get_child("x", "").unwrap();
    assert!(x.has_child("y", ""));
}

#[test]
fn namespaces_are_shared_not_reallocated() {
    let els = stanzas("<a><b xmlns='urn:custom'><c/></b></a><d xmlns='urn:custom'/>").unwrap();
    let b = els[0].get_child("b", "urn:custom").unwrap();
    let c = b.get_child("c", "urn:custom").unwrap();
    let d = &els[1];
    assert_eq!(b.ns().as_ptr(), c.ns().as_ptr());
    assert_eq!(b.ns().as_ptr(), d.ns().as_ptr(), "interned across stanzas");
}

#[test]
fn whitespace_keepalives_are_skipped() {
    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(HEADER.as_bytes());
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Open(_)))
    ));
    parser.feed(b" \n\t\r ");
    assert_eq!(parser.next_event(), Ok(None));
    assert_eq!(parser.buffered(), 0);
    parser.feed(b"<r xmlns='urn:xmpp:sm:3'/>\n");
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Element(_)))
    ));
    assert_eq!(parser.next_event(), Ok(None));
}

#[test]
fn text_at_stream_level_is_rejected() {
    assert_not_well_formed("hello");
    assert_not_well_formed("<a/>x<b/>");
    assert_not_well_formed("&amp;");
    assert_not_well_formed("<![CDATA[x]]>");
    assert!(matches!(
        parse(b"hello<stream/>", Limits::CLIENT).1,
        Some(XmlError::NotWellFormed(_))
    ));
}

#[test]
fn restricted_constructs() {
    assert_restricted("<!DOCTYPE foo>");
    assert_restricted("<!-- comment -->");
    assert_restricted("<a><!-- comment --></a>");
    assert_restricted("<a><!ENTITY x 'y'></a>");
    assert_restricted("<?pi data?>");
    assert_restricted("<a><?pi?></a>");
    assert_restricted("<?xml version='1.0'?>");
    assert_restricted("<a>&foo;</a>");
    assert_restricted("<a b='&foo;'/>");
    for prolog in [
        "<!DOCTYPE stream>",
        "<!-- hi --><stream>",
        "<?pi?><stream>",
        " <?xml version='1.0'?><stream>",
        "<?xml-stylesheet?><stream>",
    ] {
        assert!(
            matches!(
                parse(prolog.as_bytes(), Limits::CLIENT).1,
                Some(XmlError::Restricted(_))
            ),
            "{prolog}"
        );
    }
}

#[test]
fn xml_declaration_rules() {
    for bad in [
        "<?xml version='1.1'?><s>",
        "<?xml?><s>",
        "<?xml version='1.0' encoding='latin1'?><s>",
    ] {
        assert!(parse(bad.as_bytes(), Limits::CLIENT).1.is_some(), "{bad}");
    }
    let (events, error) = parse(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<s>",
        Limits::CLIENT,
    );
    assert_eq!(error, None);
    assert_eq!(events.len(), 1);
}

#[test]
fn entities_and_character_references() {
    let el = stanza(
        "<a x='&lt;&gt;&amp;&quot;&apos;&#65;&#x42;'>&lt;&gt;&amp;&quot;&apos;&#65;&#x1F600;</a>",
    );
    assert_eq!(el.attr("x"), Some("<>&\"'AB"));
    assert_eq!(el.text(), "<>&\"'A😀");
    for bad in [
        "<a>&#0;</a>",
        "<a>&#xD800;</a>",
        "<a>&#xFFFF;</a>",
        "<a>&#x110000;</a>",
        "<a>&#;</a>",
        "<a>&amp</a>",
    ] {
        assert_not_well_formed(bad);
    }
    assert_not_well_formed("<a>a & b</a>");
    assert_not_well_formed("<a b='a & b'/>");
}

#[test]
fn cdata_is_text() {
    let el = stanza("<a>x<![CDATA[<b>&amp;]]]]><![CDATA[>]]>y</a>");
    assert_eq!(el.nodes(), &[Node::Text("x<b>&amp;]]>y".into())]);
    assert_not_well_formed("<a><![CDAT[x]]></a>");
    assert_not_well_formed("<a><![cdata[x]]></a>");
    assert_not_well_formed("<a>]]></a>");
}

#[test]
fn line_ends_and_attribute_whitespace_are_normalised() {
    let el = stanza("<a x='1\r\n2\t3\n4&#10;5&#9;'>l1\r\nl2\rl3<![CDATA[\r\n]]></a>");
    assert_eq!(el.attr("x"), Some("1 2 3 4\n5\t"));
    assert_eq!(el.text(), "l1\nl2\nl3\n");
}

#[test]
fn invalid_names() {
    for bad in [
        "<1abc/>",
        "<-a/>",
        "<a:b:c xmlns:a='u'/>",
        "<:a/>",
        "<a: xmlns:a='u'/>",
        "<a 1b='x'/>",
        "<a b:='x'/>",
    ] {
        assert_not_well_formed(bad);
    }
    assert_not_well_formed("<é\u{D7}/>");
    // Found by the rxml oracle: XML allows U+FDF0..U+FFFD in names, rxml does not, and neither do we.
    assert_not_well_formed("<\u{FEFF}j-j-/>");
    assert_eq!(stanza("<é\u{B7}1 ü='1'/>").name(), "é\u{B7}1");
}

#[test]
fn invalid_characters() {
    assert_not_well_formed("<a>\u{1}</a>");
    assert_not_well_formed("<a b='\u{0}'/>");
    assert_not_well_formed("<a\u{1b}/>");
    assert_not_well_formed("<a>\u{FFFE}</a>");
    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(HEADER.as_bytes());
    parser.feed(b"<a>\xff</a>");
    assert!(matches!(
        drain(&mut parser).1,
        Some(XmlError::NotWellFormed(_))
    ));
    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(b"<s x='\xc3'>");
    assert!(matches!(
        drain(&mut parser).1,
        Some(XmlError::NotWellFormed(_))
    ));
}

#[test]
fn unbound_and_reserved_prefixes() {
    assert_not_well_formed("<p:a/>");
    assert_not_well_formed("<a p:b='1'/>");
    assert_not_well_formed("<a><p:b xmlns:p='u'/><p:c/></a>");
    assert_not_well_formed("<a xmlns:p=''/>");
    assert_not_well_formed("<a xmlns:xmlns='u'/>");
    assert_not_well_formed("<a xmlns:xml='u'/>");
    assert_not_well_formed("<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>");
    assert_not_well_formed("<a xmlns='http://www.w3.org/2000/xmlns/'/>");
    assert_not_well_formed("<xmlns:a/>");
    assert_not_well_formed("<xml:a/>");
    let el = stanza("<a xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en'/>");
    assert_eq!(el.attr("xml:lang"), Some("en"));
    // A declaration can follow the attribute that uses it.
    assert_eq!(
        stanza("<a p:b='1' xmlns:p='urn:p'/>").attr_ns("b", "urn:p"),
        Some("1")
    );
}

#[test]
fn duplicate_attributes() {
    assert_not_well_formed("<a b='1' b='2'/>");
    assert_not_well_formed("<a xmlns:p='u' xmlns:q='u' p:b='1' q:b='2'/>");
    assert_not_well_formed("<a xmlns='u' xmlns='v'/>");
    assert_not_well_formed("<a xmlns:p='u' xmlns:p='v'/>");
    assert_not_well_formed("<a xml:lang='en' xml:lang='de'/>");
    let many: String = (0..20).map(|i| format!(" p:a{i}='x'")).collect();
    assert_not_well_formed(&format!("<a xmlns:p='u' xmlns:q='u'{many} q:a7='y'/>"));
    // Same local name in different namespaces is fine.
    let el = stanza("<a xmlns:p='u' b='1' p:b='2' xml:b='3'/>");
    assert_eq!(el.attributes().len(), 3);
}

#[test]
fn malformed_tags() {
    for bad in [
        "<a></b>",
        "<a><b></a></b>",
        "<a b=1/>",
        "<a b/>",
        "<a b='1'c='2'/>",
        "<a b='<'/>",
        "<a/ ></a>",
        "< a/>",
        "<a></ a>",
        "<a></a x='1'>",
        "<></>",
        "<a></>",
    ] {
        assert!(stanzas(bad).is_err(), "{bad}");
    }
    // An unterminated attribute value just means the tag has not ended yet.
    assert_eq!(stanzas("<a b='1/>"), Ok(vec![]));
    // `>` is fine in attribute values and text; whitespace is fine around `=` and before `>`.
    let el = stanza("<a b = '>' c=\"'\"\n>x>y</a\n>");
    assert_eq!(el.attr("b"), Some(">"));
    assert_eq!(el.attr("c"), Some("'"));
    assert_eq!(el.text(), "x>y");
}

/// Splitting the input anywhere (inside UTF-8 sequences, tags, references, CDATA markers) changes nothing.
#[test]
fn fragmentation_is_invisible() {
    let doc = format!(
        "{HEADER}<message to='jü@example.org' id='&amp;1'><body>héllo 😀 &lt;&#x1F600;</body>\
         <x xmlns='urn:x' a=\"q'>\"><![CDATA[a]]<b/>]]></x></message> \n<r xmlns='urn:xmpp:sm:3'/>\
         <iq>bad&foo;</iq>"
    );
    let whole = parse(doc.as_bytes(), Limits::CLIENT);
    assert!(
        matches!(whole.1, Some(XmlError::Restricted(_))),
        "{whole:?}"
    );
    assert_eq!(whole.0.len(), 3);
    for chunk in [1, 2, 3, 5, 7, 64] {
        let mut parser = StreamParser::new(Limits::CLIENT);
        let mut events = Vec::new();
        let mut error = None;
        for piece in doc.as_bytes().chunks(chunk) {
            parser.feed(piece);
            let (more, err) = drain(&mut parser);
            events.extend(more);
            if err.is_some() {
                error = err;
                break;
            }
        }
        assert_eq!((events, error), whole, "chunk size {chunk}");
    }
}

#[test]
fn reset_forgets_everything() {
    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(HEADER.as_bytes());
    parser.feed(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>injected");
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Open(_)))
    ));
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Element(_)))
    ));
    assert_eq!(parser.buffered(), "injected".len());
    parser.reset();
    assert_eq!(parser.buffered(), 0);
    parser.feed(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>");
    let Ok(Some(StreamEvent::Open(header))) = parser.next_event() else {
        panic!()
    };
    assert_eq!(header.default_ns, ns::SERVER);
    parser.feed(b"<iq/>");
    let Ok(Some(StreamEvent::Element(iq))) = parser.next_event() else {
        panic!()
    };
    assert!(iq.is("iq", ns::SERVER));

    // Reset also revives a parser that failed.
    parser.feed(b"<!-- -->");
    let error = parser.next_event().unwrap_err();
    parser.feed(b"<a/>");
    assert_eq!(parser.next_event(), Err(error));
    parser.reset();
    parser.feed(HEADER.as_bytes());
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Open(_)))
    ));
}

#[test]
fn stanza_byte_budget() {
    let limits = Limits {
        max_stanza_bytes: 100,
        max_depth: 8,
    };
    let exact = format!("<a>{}</a>", "x".repeat(100 - 7));
    let (events, error) = parse(format!("{HEADER}{exact}").as_bytes(), limits);
    assert_eq!((events.len(), error), (2, None));
    let over = format!("<a>{}</a>", "x".repeat(100 - 6));
    let (_, error) = parse(format!("{HEADER}{over}").as_bytes(), limits);
    assert!(matches!(error, Some(XmlError::TooLarge(_))));

    // Fails while the element is still arriving, holding no more than the budget and one chunk.
    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(HEADER.as_bytes());
    parser.feed(b"<message><body a='");
    let mut result: Result<Option<()>, XmlError> = Ok(None);
    for _ in 0..1000 {
        parser.feed(&[b'x'; 4096]);
        assert!(parser.buffered() <= Limits::CLIENT.max_stanza_bytes + 4096 + 100);
        result = drain(&mut parser).1.map_or(Ok(None), Err);
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(XmlError::TooLarge(_))));
    assert_eq!(parser.buffered(), 0, "a dead parser holds nothing");
}

#[test]
fn header_byte_budget() {
    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(b"<stream:stream a='");
    for _ in 0..10 {
        parser.feed(&[b'x'; 4096]);
        let _ = parser.next_event();
    }
    assert!(matches!(parser.next_event(), Err(XmlError::TooLarge(_))));
    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(b"<?xml version='1.0");
    parser.feed(&[b' '; 20_000]);
    assert!(matches!(parser.next_event(), Err(XmlError::TooLarge(_))));
}

#[test]
fn depth_limit() {
    let limits = Limits {
        max_depth: 3,
        ..Limits::CLIENT
    };
    let ok = format!("{HEADER}<a><b><c/></b></a><a><b><c></c></b></a>");
    let (events, error) = parse(ok.as_bytes(), limits);
    assert_eq!((events.len(), error), (3, None));
    for bad in ["<a><b><c><d/></c></b></a>", "<a><b><c><d>"] {
        let (_, error) = parse(format!("{HEADER}{bad}").as_bytes(), limits);
        assert!(matches!(error, Some(XmlError::TooLarge(_))), "{bad}");
    }
    // Deep nesting never recurses: a long run of open tags only hits the limit.
    let deep = "<a>".repeat(100_000);
    let (_, error) = parse(format!("{HEADER}{deep}").as_bytes(), Limits::SERVER);
    assert!(matches!(error, Some(XmlError::TooLarge(_))));
}

#[test]
fn error_messages_do_not_echo_input() {
    let long = "n".repeat(100_000);
    for content in [
        format!("<a></{long}>"),
        format!("<1{long}/>"),
        format!("<a>&{long};</a>"),
        format!("<{long}:a/>"),
    ] {
        let error = error(&content);
        assert!(error.to_string().len() < 100, "{error}");
    }
}

#[test]
fn round_trip_through_serialiser() {
    let input = "<message xmlns:p='urn:p' p:x='&apos;\t' y='a&#13;b' xml:lang='fr'><body>a &lt; b\r\n&amp; ]]&gt;</body>\
                 <p:thing><q xmlns=''/><r xmlns='urn:r'>txt<![CDATA[<&>]]></r></p:thing></message>";
    let el = stanza(input);
    crate::fuzzing::stream_parser(
        &[[0u8].as_slice(), HEADER.as_bytes(), input.as_bytes()].concat(),
    );
    let mut out = Vec::new();
    el.write_to(&mut out, ns::CLIENT);
    let again = stanza(std::str::from_utf8(&out).unwrap());
    assert_eq!(again, el);
}

#[test]
fn sticky_error_and_no_feeding_after_death() {
    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(b"junk");
    let error = parser.next_event().unwrap_err();
    parser.feed(&[b'x'; 1000]);
    assert_eq!(parser.buffered(), 0);
    assert_eq!(parser.next_event(), Err(error));
}

#[test]
fn namespace_declarations_are_bounded() {
    let decls: String = (0..200).map(|i| format!(" xmlns:p{i}='urn:{i}'")).collect();
    assert!(matches!(
        error(&format!("<a{decls}/>")),
        XmlError::TooLarge(_)
    ));
    let decls: String = (0..100).map(|i| format!(" xmlns:p{i}='urn:{i}'")).collect();
    let el = stanza(&format!("<a{decls}><p99:b p0:c='1'/></a>"));
    assert!(el.has_child("b", "urn:99"));
}

#[test]
fn a_mismatched_end_tag_fails_at_once() {
    // Without names, depth counting alone would take `</message>` as closing `<body>` and wait for more.
    let mut p = StreamParser::new(Limits::CLIENT);
    p.feed(HEADER_FOR_MISMATCH.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    p.feed(b"<message><body>unclosed</message>");
    assert!(matches!(p.next_event(), Err(XmlError::NotWellFormed(_))));

    // Prefixed names and whitespace before `>` are compared as written.
    let mut p = StreamParser::new(Limits::CLIENT);
    p.feed(HEADER_FOR_MISMATCH.as_bytes());
    p.next_event().unwrap();
    p.feed(b"<message><x:a xmlns:x='urn:x'><b></b ></x:a></message >");
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Element(_)))));
}

const HEADER_FOR_MISMATCH: &str = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='a' version='1.0'>";

/// A parser that has read [`HEADER`] and then `stanza`, which must come out as one element.
fn after_stanza(limits: Limits, stanza: &[u8]) -> StreamParser {
    let mut parser = StreamParser::new(limits);
    parser.feed(HEADER.as_bytes());
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Open(_)))
    ));
    parser.feed(stanza);
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Element(_)))
    ));
    parser
}

const STARTTLS: &[u8] = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

#[test]
fn whitespace_after_an_element_is_not_pending_input() {
    let parser = after_stanza(Limits::CLIENT, &[STARTTLS, b"\r\n \t"].concat());
    assert_eq!(parser.buffered(), 4, "buffered() still counts whitespace");
    assert!(!parser.has_pending_input());

    let parser = after_stanza(Limits::CLIENT, STARTTLS);
    assert!(!parser.has_pending_input());

    for injected in [&b"\n<iq"[..], b"x", b" \n<", b"\0"] {
        let parser = after_stanza(Limits::CLIENT, &[STARTTLS, injected].concat());
        assert!(parser.has_pending_input(), "{injected:?}");
    }

    // Bytes of an element still being framed are pending too.
    let mut parser = after_stanza(Limits::CLIENT, STARTTLS);
    parser.feed(b"<mess");
    assert_eq!(parser.next_event(), Ok(None));
    assert!(parser.has_pending_input());
}

const SASL_SUCCESS_PIPELINED: &[u8] = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>\n\
    <?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'><iq/>";

#[test]
fn restart_parses_what_was_already_fed_as_the_new_stream() {
    let header_with_prefix = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
                              xmlns:p='urn:p'>";
    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(header_with_prefix.as_bytes());
    parser.feed(SASL_SUCCESS_PIPELINED);
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Open(_)))
    ));
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Element(auth))) if auth.is("auth", ns::SASL)
    ));
    parser.restart();
    // The newline after `</auth>` belonged to the old stream, so the declaration may still open the new one.
    let Ok(Some(StreamEvent::Open(header))) = parser.next_event() else {
        panic!("no new header")
    };
    assert_eq!(header.default_ns, ns::SERVER);
    let Ok(Some(StreamEvent::Element(iq))) = parser.next_event() else {
        panic!("no element in the new stream")
    };
    assert!(iq.is("iq", ns::SERVER));
    // The old header's prefixes are gone with it.
    parser.feed(b"<p:x/>");
    assert!(matches!(
        parser.next_event(),
        Err(XmlError::NotWellFormed(_))
    ));
}

#[test]
fn restart_without_pipelined_bytes_waits_for_the_header() {
    let mut parser = after_stanza(Limits::CLIENT, b"<auth/>\n");
    parser.restart();
    assert_eq!(parser.buffered(), 0);
    assert_eq!(parser.next_event(), Ok(None));
    parser.feed(b"<?xml version='1.0'?>");
    parser.feed(HEADER_FOR_MISMATCH.as_bytes());
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Open(_)))
    ));

    // A header split by the restart is completed by what comes after it.
    let mut parser = after_stanza(Limits::CLIENT, b"<auth/><stream:str");
    parser.restart();
    assert_eq!(parser.next_event(), Ok(None));
    parser.feed(b"eam xmlns:stream='http://etherx.jabber.org/streams'>");
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Open(_)))
    ));
}

#[test]
fn reset_drops_what_restart_keeps() {
    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(HEADER.as_bytes());
    parser.feed(SASL_SUCCESS_PIPELINED);
    parser.next_event().unwrap();
    parser.next_event().unwrap();
    parser.reset();
    assert_eq!(parser.buffered(), 0);
    assert_eq!(parser.next_event(), Ok(None));
}

#[test]
fn restart_revives_a_dead_parser() {
    let mut parser = after_stanza(Limits::CLIENT, b"<a/>");
    parser.feed(b"<!-- -->");
    assert!(parser.next_event().is_err());
    parser.restart();
    parser.feed(HEADER.as_bytes());
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Open(_)))
    ));
}

#[test]
fn raised_limits_apply_to_the_next_element() {
    let small = Limits {
        max_stanza_bytes: 64,
        max_depth: 2,
    };
    let big = format!("<message><body>{}</body></message>", "x".repeat(100));
    let deep = "<a><b><c/></b></a>";

    let mut parser = after_stanza(small, b"<a/>");
    parser.feed(big.as_bytes());
    assert!(matches!(parser.next_event(), Err(XmlError::TooLarge(_))));
    let mut parser = after_stanza(small, b"<a/>");
    parser.feed(deep.as_bytes());
    assert!(matches!(parser.next_event(), Err(XmlError::TooLarge(_))));

    let mut parser = after_stanza(small, b"<a/>");
    parser.set_limits(Limits::CLIENT);
    assert_eq!(parser.limits(), Limits::CLIENT);
    parser.feed(big.as_bytes());
    parser.feed(deep.as_bytes());
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Element(_)))
    ));
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Element(_)))
    ));
}

#[test]
fn an_element_being_framed_keeps_the_limits_it_started_with() {
    let small = Limits {
        max_stanza_bytes: 64,
        max_depth: 2,
    };
    // Lowered half-way: this element may still use the old budget and depth, the next may not.
    let mut parser = after_stanza(Limits::CLIENT, b"<a/>");
    parser.feed(b"<message><body>");
    assert_eq!(parser.next_event(), Ok(None));
    parser.set_limits(small);
    parser.feed(format!("<x>{}</x></body></message>", "y".repeat(100)).as_bytes());
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Element(_)))
    ));
    parser.feed(b"<a><b><c/></b></a>");
    assert!(matches!(parser.next_event(), Err(XmlError::TooLarge(_))));

    // Raised half-way: this element is still held to the small budget.
    let mut parser = after_stanza(small, b"<a/>");
    parser.feed(b"<message><body>");
    assert_eq!(parser.next_event(), Ok(None));
    parser.set_limits(Limits::CLIENT);
    parser.feed(&[b'x'; 100]);
    assert!(matches!(parser.next_event(), Err(XmlError::TooLarge(_))));
}

#[test]
fn a_slash_not_closing_the_tag_fails_at_once() {
    for tag in [
        "<a/ >",
        "<a / >",
        "<a/\n>",
        "<a//>",
        "<a/b>",
        "<a x='1'/ >",
        "<a x='1' / >",
        "<message><body/ >",
        "<message></body/ >",
    ] {
        let mut parser = StreamParser::new(Limits::CLIENT);
        parser.feed(HEADER.as_bytes());
        parser.next_event().unwrap();
        parser.feed(tag.as_bytes());
        assert!(
            matches!(parser.next_event(), Err(XmlError::NotWellFormed(_))),
            "{tag}"
        );
    }

    // Also when the `/` ends one fragment.
    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(HEADER.as_bytes());
    parser.next_event().unwrap();
    parser.feed(b"<a x='1'/");
    assert_eq!(parser.next_event(), Ok(None));
    parser.feed(b" >");
    assert!(matches!(
        parser.next_event(),
        Err(XmlError::NotWellFormed(_))
    ));
    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(HEADER.as_bytes());
    parser.next_event().unwrap();
    parser.feed(b"<a><b/");
    assert_eq!(parser.next_event(), Ok(None));
    parser.feed(b"></a>");
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Element(_)))
    ));

    let mut parser = StreamParser::new(Limits::CLIENT);
    parser.feed(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/ >");
    assert!(matches!(
        parser.next_event(),
        Err(XmlError::NotWellFormed(_))
    ));
    // A `/` inside a value is just a character.
    assert_eq!(stanza("<a x='/ >'/>").attr("x"), Some("/ >"));
}

#[test]
fn a_large_stanza_does_not_pin_its_buffer() {
    let large = format!("<message><body>{}</body></message>", "x".repeat(200 * 1024));
    for after in ["", "\n"] {
        let mut parser = after_stanza(Limits::CLIENT, format!("{large}{after}").as_bytes());
        assert_eq!(parser.next_event(), Ok(None));
        assert!(
            parser.buf.capacity() <= MAX_IDLE_CAPACITY,
            "{} bytes kept",
            parser.buf.capacity()
        );
        parser.feed(b"<r/>");
        assert!(matches!(
            parser.next_event(),
            Ok(Some(StreamEvent::Element(_)))
        ));
    }

    // Fed in pieces, consumed with data after it: shrunk once that is consumed too.
    let mut parser = after_stanza(Limits::CLIENT, b"<a/>");
    for piece in large.as_bytes().chunks(4096) {
        parser.feed(piece);
    }
    parser.feed(b"<r/><s");
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Element(_)))
    ));
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Element(_)))
    ));
    assert_eq!(parser.next_event(), Ok(None));
    parser.feed(b"/>");
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Element(_)))
    ));
    assert!(parser.buf.capacity() <= MAX_IDLE_CAPACITY);
}
