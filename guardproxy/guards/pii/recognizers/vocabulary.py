"""English word classes that tell a capitalised phrase is not a person or a place: organisation
words ("Davis Orchestra", "Acme Ltd") and words of time or grammar ("May", "Monday", "The")."""

from __future__ import annotations

import regex

ORG_WORD = regex.compile(
    r"(?i:\b(?:inc|ltd|llc|plc|gmbh|corp|co|company|group|bank|sons|orchestra|university|school|solutions|"
    r"systems|software|technologies|services|foundation|association|club|partners|incorporated|markets|transit)\b\.?)")
TIME_WORD = regex.compile(
    r"(?i:(?:january|february|march|april|may|june|july|august|september|october|november|december|monday|"
    r"tuesday|wednesday|thursday|friday|saturday|sunday|the|a|an|my|our|your|his|her|their|this|that|it)\b)")
# Words that start a sentence, a reply or a request and are no names ("Glad to help", "I'm sorry").
NOT_A_NAME = regex.compile(
    r"(?i:the|a|an|and|or|not|on|in|at|of|to|from|here|there|glad|sorry|happy|sure|fine|good|interested|looking|"
    r"writing|calling|going|trying|able|unable|afraid|ready|unemployed|busy|mr|mrs|ms|dr|i|i'm|i’m|it's|we|you|"
    r"however|so|well|ok|okay|now|then|also|yes|no|please|thanks|hey|hi|hello|honestly|actually|anyway|first|"
    r"finally|again|today|tomorrow|yesterday|otherwise|meanwhile|sir|madam|everyone|guys|folks)")
# Labels of the parties in a transcript or form that are roles, not people ("User:", "Agent:", "Q:").
ROLE_WORD = regex.compile(
    r"(?i:user|assistant|bot|system|human|ai|ai[ ]assistant|customer|client|agent|support|operator|host|guest|"
    r"interviewer|interviewee|speaker|narrator|moderator|caller|patient|doctor|teacher|student|q|a|question|"
    r"answer|note|notes|subject|re|from|to|cc|bcc|date|time|name|email|e-mail|phone|address|title|summary|"
    r"example|input|output|error|warning|step|tip|ps|update|edit|comment|reply|response|request|prompt|context)")
# Shared mailboxes named like people ("Customer Care" and customer.care@...): the address is no owner's name.
MAILBOX_WORD = regex.compile(
    r"(?i:\b(?:team|sales|support|info|admin|help|helpdesk|service|services|office|contact|billing|accounts|"
    r"marketing|press|media|hr|jobs|careers|customer|care|orders|reception|noreply)\b)")
