import Crypto
import FarmAPI
import Foundation
import Testing

@Suite("API keys")
struct APIKeyTests {
    @Test func aNewKeyIsTheSchemeAnd43Base64URLCharactersAndNeverRepeats() {
        let keys = (0..<200).map { _ in APIKey.generate().text }
        #expect(Set(keys).count == keys.count)
        for key in keys {
            #expect(key.hasPrefix("farm_") && key.count == 48, "\(key)")
            #expect(
                key.dropFirst(5).allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
            )
            #expect(APIKey.fromAuthorization("Bearer \(key)") == APIKey(text: key))
        }
    }

    @Test(
        arguments: [
            nil, "", "Bearer", "Basic Zm9vOmJhcg==", "Bearer sk_live_abc", "Bearer farm_short",
            "Bearer farm_" + String(repeating: "a", count: 44), "Bearer farm_" + String(repeating: "é", count: 43),
            "Bearer farm_" + String(repeating: "a", count: 42) + "/",
        ]
    )
    func anAuthorizationThatCarriesNoKeyOfOursGivesNone(_ header: String?) {
        #expect(APIKey.fromAuthorization(header) == nil)
    }

    @Test func theSchemeNameIsCaseInsensitiveAndTheStoredHashIsTheKeysSHA256() {
        let key = APIKey.generate()
        #expect(APIKey.fromAuthorization("bearer  \(key.text)") == key)
        #expect(key.hash == Data(SHA256.hash(data: Data(key.text.utf8))))
        #expect(key.prefix == String(key.text.prefix(12)))
    }
}
