//! The bytes of one exchange with a name server, pure and unit-tested: the
//! query as it goes out, whether an answer is for a question, and what an
//! answer teaches (the records at the end of its CNAME chain, an alias to
//! follow, or a failure) with how long it may be cached.

use std::time::Duration;

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use mxscope_common::DnsStatus;

use super::answers::Failure;
use super::{MAX_CNAME_HOPS, MAX_NEGATIVE_TTL, MAX_POSITIVE_TTL};

/// The query for `name`/`rtype` (class IN, recursion desired, no EDNS) with
/// the given ID, ready for UDP (TCP prefixes its length).
pub(super) fn query(id: u16, name: &Name, rtype: RecordType) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    // QR=0, opcode QUERY, RD=1; one question, nothing else.
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.iter() {
        // A `Name` holds labels of at most 63 bytes.
        out.push(u8::try_from(label.len()).unwrap_or(63));
        out.extend_from_slice(label);
    }
    out.push(0);
    out.extend_from_slice(&u16::from(rtype).to_be_bytes());
    out.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
    out
}

/// Whether `message` is a response to the question `name`/`rtype` (one
/// question, class IN, the name compared without case).
pub(super) fn answers_question(message: &Message, name: &Name, rtype: RecordType) -> bool {
    message.metadata.message_type == MessageType::Response
        && matches!(message.queries.as_slice(), [q]
            if q.query_type() == rtype && q.query_class() == DNSClass::IN && q.name() == name)
}

/// What one answer says about its question.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Answer {
    /// Records of the asked type at the end of the chain (the chain's CNAME
    /// records first), and the time they may be cached.
    Records(Vec<Record>, Duration),
    /// The name is an alias whose target's records are not in the answer:
    /// the chain so far and the name to ask next.
    Alias(Vec<Record>, Name),
    /// No records: the failure and, for a negative answer with an SOA, the
    /// time it may be cached.
    Failed(Failure, Option<Duration>),
}

/// Read `message`, the answer to `name`/`rtype`: only records of class IN
/// on the CNAME chain that starts at `name` count (others are ignored).
pub(super) fn read_answer(message: &Message, name: &Name, rtype: RecordType) -> Answer {
    match message.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => {
            return Answer::Failed(Failure::new(DnsStatus::Nxdomain), negative_ttl(message))
        }
        ResponseCode::ServFail => return Answer::Failed(Failure::new(DnsStatus::Servfail), None),
        ResponseCode::Refused => return Answer::Failed(Failure::new(DnsStatus::Refused), None),
        code => {
            return Answer::Failed(
                Failure {
                    status: DnsStatus::Error,
                    message: format!("response code {code}"),
                },
                None,
            )
        }
    }
    let in_class = |r: &&Record| r.dns_class == DNSClass::IN;
    let mut chain: Vec<Record> = Vec::new();
    let mut current = name.clone();
    while chain.len() < MAX_CNAME_HOPS {
        let next = message.answers.iter().filter(in_class).find(|r| {
            r.name == current && matches!(&r.data, RData::CNAME(target) if target.0 != current)
        });
        let Some(record) = next else { break };
        if let RData::CNAME(target) = &record.data {
            current = target.0.clone();
        }
        chain.push(record.clone());
    }
    let found: Vec<&Record> = message
        .answers
        .iter()
        .filter(in_class)
        .filter(|r| r.name == current && r.record_type() == rtype)
        .collect();
    if found.is_empty() {
        if chain.is_empty() {
            return Answer::Failed(Failure::new(DnsStatus::Nodata), negative_ttl(message));
        }
        return Answer::Alias(chain, current);
    }
    let ttl = chain
        .iter()
        .chain(found.iter().copied())
        .map(|r| r.ttl)
        .min()
        .unwrap_or(0);
    chain.extend(found.into_iter().cloned());
    Answer::Records(
        chain,
        Duration::from_secs(u64::from(ttl)).min(MAX_POSITIVE_TTL),
    )
}

/// RFC 2308 §5: a negative answer is cached for the SOA's TTL bounded by
/// its MINIMUM (and by [`MAX_NEGATIVE_TTL`]); without an SOA, not at all.
fn negative_ttl(message: &Message) -> Option<Duration> {
    message.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => {
            Some(Duration::from_secs(u64::from(r.ttl.min(soa.minimum))).min(MAX_NEGATIVE_TTL))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_resolver::proto::op::{OpCode, Query};
    use hickory_resolver::proto::rr::rdata::{A, CNAME, SOA};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("a name")
    }

    fn response(q: &str, rtype: RecordType, answers: Vec<Record>) -> Message {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name(q), rtype));
        m.add_answers(answers);
        m
    }

    fn a(n: &str, ttl: u32, ip: [u8; 4]) -> Record {
        Record::from_rdata(name(n), ttl, RData::A(A(Ipv4Addr::from(ip))))
    }

    fn cname(n: &str, target: &str) -> Record {
        Record::from_rdata(name(n), 600, RData::CNAME(CNAME(name(target))))
    }

    #[test]
    fn the_query_is_what_a_parser_reads_back() {
        let bytes = query(0xbeef, &name("mx1.example.test."), RecordType::MX);
        let m = Message::from_vec(&bytes).expect("parses");
        assert_eq!(m.metadata.id, 0xbeef);
        assert_eq!(m.metadata.message_type, MessageType::Query);
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].name(), &name("mx1.example.test."));
        assert_eq!(m.queries[0].query_type(), RecordType::MX);
        assert!(m.answers.is_empty() && m.additionals.is_empty() && m.edns.is_none());
    }

    #[test]
    fn an_answer_is_for_its_question_only() {
        let m = response("MX1.Example.test.", RecordType::A, vec![]);
        assert!(answers_question(
            &m,
            &name("mx1.example.test."),
            RecordType::A
        ));
        assert!(!answers_question(
            &m,
            &name("mx2.example.test."),
            RecordType::A
        ));
        assert!(!answers_question(
            &m,
            &name("mx1.example.test."),
            RecordType::AAAA
        ));
        let mut query = m.clone();
        query.metadata.message_type = MessageType::Query;
        assert!(!answers_question(
            &query,
            &name("mx1.example.test."),
            RecordType::A
        ));
        let mut two = m.clone();
        two.add_query(Query::query(name("x.test."), RecordType::A));
        assert!(!answers_question(
            &two,
            &name("mx1.example.test."),
            RecordType::A
        ));
    }

    #[test]
    fn records_at_the_end_of_the_chain_count_and_nothing_else() {
        let m = response(
            "a.test.",
            RecordType::A,
            vec![
                cname("a.test.", "b.test."),
                a("b.test.", 100, [192, 0, 2, 1]),
                // Not on the chain: ignored.
                a("other.test.", 100, [192, 0, 2, 9]),
                a("a.test.", 100, [192, 0, 2, 8]),
            ],
        );
        let Answer::Records(records, ttl) = read_answer(&m, &name("a.test."), RecordType::A) else {
            panic!("records expected");
        };
        assert_eq!(
            records,
            vec![
                cname("a.test.", "b.test."),
                a("b.test.", 100, [192, 0, 2, 1])
            ]
        );
        assert_eq!(ttl, Duration::from_secs(100));
    }

    #[test]
    fn an_alias_without_its_target_is_followed() {
        let m = response("a.test.", RecordType::A, vec![cname("a.test.", "b.other.")]);
        assert_eq!(
            read_answer(&m, &name("a.test."), RecordType::A),
            Answer::Alias(vec![cname("a.test.", "b.other.")], name("b.other."))
        );
    }

    #[test]
    fn a_cname_loop_ends() {
        let m = response(
            "a.test.",
            RecordType::A,
            vec![cname("a.test.", "b.test."), cname("b.test.", "a.test.")],
        );
        assert!(matches!(
            read_answer(&m, &name("a.test."), RecordType::A),
            Answer::Alias(chain, _) if chain.len() == MAX_CNAME_HOPS
        ));
    }

    #[test]
    fn ttls_are_capped() {
        let m = response(
            "a.test.",
            RecordType::A,
            vec![a("a.test.", 86_400, [192, 0, 2, 1])],
        );
        assert!(matches!(
            read_answer(&m, &name("a.test."), RecordType::A),
            Answer::Records(_, ttl) if ttl == MAX_POSITIVE_TTL
        ));
    }

    #[test]
    fn response_codes_and_negative_caching() {
        let q = name("a.test.");
        let mut m = response("a.test.", RecordType::A, vec![]);
        assert_eq!(
            read_answer(&m, &q, RecordType::A),
            Answer::Failed(Failure::new(DnsStatus::Nodata), None)
        );
        let soa = SOA::new(name("ns.test."), name("h.test."), 1, 2, 3, 4, 30);
        m.add_authority(Record::from_rdata(name("test."), 3600, RData::SOA(soa)));
        m.metadata.response_code = ResponseCode::NXDomain;
        assert_eq!(
            read_answer(&m, &q, RecordType::A),
            Answer::Failed(
                Failure::new(DnsStatus::Nxdomain),
                Some(Duration::from_secs(30))
            )
        );
        for (code, status) in [
            (ResponseCode::ServFail, DnsStatus::Servfail),
            (ResponseCode::Refused, DnsStatus::Refused),
        ] {
            m.metadata.response_code = code;
            assert_eq!(
                read_answer(&m, &q, RecordType::A),
                Answer::Failed(Failure::new(status), None)
            );
        }
        m.metadata.response_code = ResponseCode::FormErr;
        let Answer::Failed(failure, None) = read_answer(&m, &q, RecordType::A) else {
            panic!("a failure expected");
        };
        assert_eq!(failure.status, DnsStatus::Error);
        assert!(
            failure.message.contains("response code"),
            "{}",
            failure.message
        );
    }
}
