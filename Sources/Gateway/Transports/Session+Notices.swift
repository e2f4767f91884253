import Broker

extension Session {
    /// What the client is told when the `lastEventId` it presented was ignored (see
    /// ``Session/ignoredLastEventId``): every transport says it the same way.
    var ignoredLastEventIdNotice: String? {
        ignoredLastEventId.map {
            "lastEventId \"\($0.prefix(40))\" was not issued by this server and was ignored; "
                + "missed events are delivered as to a new connection"
        }
    }
}
